package main

import "github.com/urfave/cli/v2"

// commands lists tfcat's subcommands in the order help shows them.
func commands() []*cli.Command {
	return []*cli.Command{
		trainCommand(),
		predictCommand(),
		evalCommand(),
		inspectCommand(),
		compareCommand(),
		exportCommand(),
		serveCommand(),
		dataCommand(),
		preprocessCommand(),
		versionCommand(),
	}
}
