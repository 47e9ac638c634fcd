// Command tfcat trains, checks, ships and serves the TensorFlow tutorial's image
// classifier from Go, with no Python at run time: `tfcat train --data DIR`,
// `tfcat predict --model DIR IMAGE`, `tfcat --help`. It maps flags to the
// library's options and prints. Exit status: 0 success, 1 failure, 2 usage error.
package main

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tfcat/tfcat/checkpoint"
	"github.com/tfcat/tfcat/cluster"
	"github.com/tfcat/tfcat/internal/onednn"
	"github.com/tfcat/tfcat/tflog"
	"github.com/urfave/cli/v2"
)

// version is set at build time (make build) from git describe.
var version = "dev"

// usageError marks a mistake in how tfcat was called: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func onUsageError(c *cli.Context, err error, _ bool) error { return usageError{err} }

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:            "tfcat",
		Usage:           "TensorFlow image classification in Go: train, predict, evaluate, export and serve the tutorial's CNN",
		Version:         version,
		Description:     help("tfcat"),
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		Suggest:         true,
		OnUsageError:    onUsageError,
		ExitErrHandler:  func(*cli.Context, error) {}, // main decides the exit status
		Commands:        commands(),
		Flags: []cli.Flag{&cli.BoolFlag{Name: "onednn", Value: true, // read by onednn.Reexec before the app runs
			Usage: "TensorFlow's oneDNN CPU kernels (2x faster here; probabilities differ by ~1e-7): on for train, eval, serve and folder predict; --onednn=false turns off"}},
		// Without this, an unknown command would print help and exit 3.
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("unknown command %q", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
	}
	for _, c := range app.Commands {
		setUsageHandler(c)
	}
	return app
}

func setUsageHandler(c *cli.Command) {
	c.OnUsageError = onUsageError
	for _, sub := range c.Subcommands {
		setUsageHandler(sub)
	}
}

// run is main without os.Exit, for tests: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	err := newApp(stdout, stderr).Run(args)
	if err == nil {
		return 0
	}
	switch {
	case errors.Is(err, checkpoint.ErrUntrustedGraph):
		err = fmt.Errorf("%w (pass --trust-graph if you trust the file)", err)
	case errors.Is(err, cluster.ErrPublicAddress):
		err = fmt.Errorf("%w, or pass --allow-public-cluster", err)
	}
	// One line: TensorFlow's messages can carry newlines and stack traces
	// that help nobody at the terminal.
	msg, _, _ := strings.Cut(err.Error(), "\n")
	fmt.Fprintln(stderr, "tfcat: "+strings.TrimSpace(msg))
	var u usageError
	// urfave/cli reports a missing required flag with an unexported type.
	if errors.As(err, &u) || strings.HasPrefix(err.Error(), "Required flag") {
		fmt.Fprintln(stderr, "Run 'tfcat --help' or 'tfcat COMMAND --help' for usage.")
		return 2
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) && ec.ExitCode() != 0 {
		return ec.ExitCode()
	}
	return 1
}

func main() {
	onednn.Reexec(os.Args, tflog.Flush)
	code := run(os.Args, os.Stdout, os.Stderr)
	tflog.Flush() // before exiting: what C++ wrote to stderr must not be lost
	os.Exit(code)
}

// commands lists tfcat's subcommands in the order help shows them.
func commands() []*cli.Command {
	return []*cli.Command{trainCommand(), predictCommand(), evalCommand(), inspectCommand(), compareCommand(),
		exportCommand(), reportCommand(), serveCommand(), dataCommand(), preprocessCommand(), versionCommand()}
}

// helpText holds each command's long help, one file per command.
//
//go:embed help/*.txt
var helpText embed.FS

// help is the long help of the named command.
func help(name string) string {
	b, err := helpText.ReadFile("help/" + name + ".txt")
	if err != nil {
		panic("tfcat: no help text for " + name) // a build mistake, caught by every test
	}
	return strings.TrimSuffix(string(b), "\n")
}
