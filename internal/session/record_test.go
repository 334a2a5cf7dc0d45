package session

import "testing"

func TestStatusString(t *testing.T) {
	for st, want := range map[Status]string{
		StatusNotStarted: "not started",
		StatusInProgress: "in progress",
		StatusCompleted:  "completed",
		StatusCancelled:  "cancelled",
		StatusTerminated: "terminated",
		Status(9):        "status 9",
	} {
		if got := st.String(); got != want {
			t.Errorf("Status(%d) = %q, want %q", int(st), got, want)
		}
	}
}
