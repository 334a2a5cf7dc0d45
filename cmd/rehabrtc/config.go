package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/rehabrtc/rehabrtc/internal/config"
	"github.com/rehabrtc/rehabrtc/internal/ports"
)

func configCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, "Usage:\n  rehabrtc config default               print the default configuration\n  rehabrtc config check --config FILE   validate a file\n")
		if len(args) == 0 {
			return fmt.Errorf("config: missing subcommand (default or check)")
		}
		return errUsageShown
	}
	switch args[0] {
	case "default":
		b, err := config.Default().JSON()
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	case "check":
		fs := flag.NewFlagSet("config check", flag.ContinueOnError)
		fs.SetOutput(stderr)
		path := fs.String("config", "", "configuration file to validate")
		if err := fs.Parse(args[1:]); err != nil {
			return flagErr(err)
		}
		cfg, err := config.Load(*path)
		if err != nil {
			return err
		}
		w := cfg.WebRTC
		if warn := ports.EphemeralOverlap(ports.EphemeralRangeFile, w.LocalBasePort, w.MaxSessions); warn != "" {
			fmt.Fprintln(stderr, "warning:", warn)
		}
		fmt.Fprintln(stdout, "configuration OK")
		return nil
	}
	return fmt.Errorf("config: unknown subcommand %q (want default or check)", args[0])
}

// flagErr turns -h into a quiet exit and any other flag error into one line.
func flagErr(err error) error {
	if err == flag.ErrHelp {
		return errUsageShown
	}
	return err
}
