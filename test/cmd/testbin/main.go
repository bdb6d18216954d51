// Command testbin builds every test bed binary into the tool cache (make testbin), so the
// first test run does not pay for it, and prints where each one is.
package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"

	"github.com/promgate/promgate/test/testbin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	for _, tool := range testbin.Tools {
		dir, err := testbin.Ensure(ctx, tool, os.Stdout)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testbin:", err)
			os.Exit(1)
		}
		for _, name := range slices.Sorted(maps.Keys(tool.Binaries)) {
			fmt.Printf("%-24s %s/%s\n", name, dir, name)
		}
	}
}
