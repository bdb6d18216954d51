package bench

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/promgate/promgate/test/testbed"
)

// profiler saves the controller's pprof profiles into $PROMGATE_PPROF_DIR when it is
// set, for `go tool pprof`: where memory and CPU go at the scale a benchmark runs.
type profiler struct {
	dir, addr string
}

// newProfiler returns the controller flags that serve pprof, and the profiler reading it;
// without $PROMGATE_PPROF_DIR, no flags and a profiler that does nothing.
func newProfiler(b *testing.B) ([]string, *profiler) {
	b.Helper()
	dir := os.Getenv("PROMGATE_PPROF_DIR")
	if dir == "" {
		return nil, &profiler{}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	port, err := testbed.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	p := &profiler{dir: dir, addr: "127.0.0.1:" + strconv.Itoa(port)}
	return []string{"--pprof-bind-address=" + p.addr}, p
}

// heap saves a heap profile (after a GC, so it shows what is live) as NAME-heap.pb.gz,
// and the runtime's memory statistics as NAME-memstats.txt.
func (p *profiler) heap(name string) {
	p.save(name+"-heap.pb.gz", "/debug/pprof/heap?gc=1")
	p.save(name+"-memstats.txt", "/debug/pprof/heap?debug=1")
}

// cpu starts a CPU profile of the next d, saved as NAME-cpu.pb.gz; wait for it with the
// returned function.
func (p *profiler) cpu(name string, d time.Duration) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.save(name+"-cpu.pb.gz", fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(d.Seconds())))
	}()
	return func() { <-done }
}

// save writes one profile; a profile that cannot be read is said, not fatal: the
// benchmark's figures stand without it.
func (p *profiler) save(file, path string) {
	if p.dir == "" {
		return
	}
	if err := p.fetch(filepath.Join(p.dir, file), path); err != nil {
		fmt.Printf("  profile %s: %v\n", file, err)
		return
	}
	fmt.Printf("  profile: %s\n", filepath.Join(p.dir, file))
}

func (p *profiler) fetch(file, path string) error {
	resp, err := http.Get("http://" + p.addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", path, resp.Status)
	}
	out, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
