package cluster

import "context"

// ConsultLease is the lease of the consultation service (the EHRC API):
// in a cluster one node at a time serves every namespace, its Socket.IO
// connections and rooms, and the other nodes' gateways proxy the
// consultation routes to it. Session ids start at 1, so 0 is free.
const ConsultLease int64 = 0

// Holder says who holds lease id: this node (here), another live node at
// its internal address addr, or nobody alive (both empty).
func (h *Homes) Holder(ctx context.Context, id int64) (addr string, here bool, err error) {
	info, ok, err := h.home(ctx, id)
	if err != nil || !ok {
		return "", false, err
	}
	if info.Member() == h.n.info.Member() {
		return "", true, nil
	}
	return info.InternalAddr, false, nil
}
