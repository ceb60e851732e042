package failover_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfsha/mfsha/deploy/lab"
	"github.com/mfsha/mfsha/deploy/lab/ha"
	"github.com/mfsha/mfsha/failover"
	"github.com/mfsha/mfsha/internal/mfstest"
	"github.com/mfsha/mfsha/internal/moosefs"
	"github.com/mfsha/mfsha/internal/natsconn"
	"github.com/mfsha/mfsha/internal/stream"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// mfshaBin builds the mfsha binary once per test process.
func mfshaBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mfsha-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "mfsha")
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = "/usr/local/go/bin/go"
		}
		if out, err := exec.Command(goBin, "build", "-o", binPath, "github.com/mfsha/mfsha/cmd/mfsha").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build mfsha: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func requireLab(t *testing.T) moosefs.Dist {
	t.Helper()
	d := mfstest.RequireMooseFS(t)
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Fatal("nsenter not found: run `make deps` (util-linux)")
	}
	return d
}

// cluster is a lab with the failover layout: NATS on n1-n3, a node starting as master on ma
// and one starting as standby on mb (each with a metalogger), chunkservers on mb and c1, a
// client on cl.
type cluster struct {
	t       *testing.T
	l       *lab.Lab
	bin     string
	name    string
	urls    []string
	lease   *failover.Lease
	closeNC func()
	mnt     string
	files   map[string]string
	vip     *ha.VIPSampler
	writer  *ha.Writer // the continuous client on cl (see stopWriter)
	// mayLose, when set, names the acknowledgments a fault may take back (see
	// TestFailoverPowerOffAndReturn); stopWriter returns those files if they are wrong.
	mayLose func(acked time.Time) bool
	extra   []string // flags of every node after nodeFlags
	receive bool     // nodes standing by receive the changelog themselves (RECEIVE), not from mfsmetalogger
}

const leaseTTL = "4s"

// nodeFlags are the timings the tests use: a short TTL so that a power-off is quick to test,
// and a renewal timeout (1 s) that a lease request meets on a 2-CPU machine running the race
// detector, the continuous writer and two test packages at once. With 250 ms, renewals missed
// their deadline under that load and the master fenced itself: false failovers, which are
// issue 11's subject, not what these tests are about. The timing rule still holds:
// 500ms + 2*1s + 1500ms <= 4s.
var nodeFlags = []string{"--lease-ttl", leaseTTL, "--renew-every", "500ms", "--renew-timeout", "1s",
	"--master-stop-timeout", "1500ms", "--start-grace", "1s", "--log-level", "debug"}

// newCluster starts the lab; extra are flags for every failover node (after nodeFlags).
func newCluster(t *testing.T, suffix string, extra ...string) *cluster {
	return newClusterOf(t, suffix, false, extra...)
}

// newClusterOf is newCluster; with receive, the nodes standing by receive the changelog from
// the VIP's metalogger port themselves (RECEIVE) instead of reading their host's mfsmetalogger.
func newClusterOf(t *testing.T, suffix string, receive bool, extra ...string) *cluster {
	mfs := requireLab(t)
	bin := mfshaBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := fmt.Sprintf("f%s%04x", suffix, os.Getpid()%0x10000)
	hosts := append(lab.DefaultHosts(), lab.NATSHosts()...)
	l, err := lab.New(lab.Config{Name: name, Dir: t.TempDir(), Hosts: hosts, StartTimeout: 30 * time.Second, MooseFS: mfs})
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, l: l, bin: bin, name: name, files: map[string]string{}, extra: extra, receive: receive}
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range []string{lab.HostMasterA, lab.HostMasterB} {
				b, _ := os.ReadFile(ha.NodeLog(l, h))
				lines := strings.Split(string(b), "\n")
				if len(lines) > 80 {
					lines = lines[len(lines)-80:]
				}
				t.Logf("---- %s node log (tail) ----\n%s", h, strings.Join(lines, "\n"))
			}
			// What the writer's mfsmount saw: a stuck writer is explained here, not in the nodes.
			if b, err := os.ReadFile(l.LogPath(lab.HostClient, lab.RoleMount)); err == nil {
				lines := strings.Split(string(b), "\n")
				if len(lines) > 40 {
					lines = lines[len(lines)-40:]
				}
				t.Logf("---- %s mount log (tail) ----\n%s", lab.HostClient, strings.Join(lines, "\n"))
			}
		}
		keepHosts := func(keep, sub string) { // copy each host's dir (or its sub) to keep
			if err := os.MkdirAll(keep, 0o755); err != nil {
				t.Logf("keep: %v", err)
				return
			}
			for _, h := range l.Hosts() {
				if b, err := exec.Command("cp", "-a", filepath.Join(l.HostDir(h), sub), filepath.Join(keep, t.Name()+"-"+h)).CombinedOutput(); err != nil {
					t.Logf("keep %s of %s: %v %s", cmp.Or(sub, "the files"), h, err, b)
				}
			}
		}
		if keep := os.Getenv("MFSHA_KEEP_FAILED"); keep != "" && t.Failed() { // every host's files, for a post-mortem
			keepHosts(keep, "")
		}
		if keep := os.Getenv("MFSHA_KEEP_LOGS"); keep != "" { // for a look at a passing run's logs
			keepHosts(keep, "log")
		}
		if c.closeNC != nil {
			c.closeNC()
		}
		dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
		defer dcancel()
		if err := l.Down(dctx); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	c.must("up", l.Up(ctx))
	c.urls, err = l.StartNATS(ctx, bin, lab.HostNATS1, lab.HostNATS2, lab.HostNATS3)
	c.must("NATS", err)
	c.must("init ma", l.InitMaster(lab.HostMasterA))
	c.must("node ma", c.startNode(ctx, lab.HostMasterA, "ship"))
	c.lease, c.closeNC, err = ha.Lease(ctx, l, lab.HostClient, name, c.urls)
	c.must("lease", err)
	_, err = ha.WaitMaster(ctx, c.lease, lab.HostMasterA)
	c.must("ma master", err)
	for _, h := range []string{lab.HostMasterA, lab.HostMasterB} {
		c.must("metalogger "+h, l.StartMetalogger(ctx, h))
	}
	c.must("node mb", c.startNode(ctx, lab.HostMasterB, "standby"))
	for _, h := range []string{lab.HostMasterB, lab.HostChunk} {
		c.must("chunkserver "+h, l.StartChunkserver(ctx, h))
	}
	c.mnt, err = l.Mount(ctx, lab.HostClient)
	c.must("mount", err)
	c.vip = ha.SampleVIP(l, 10*time.Millisecond)
	t.Cleanup(func() { c.checkVIP() })
	c.writer, err = ha.StartWriter(ctx, l, lab.HostClient, "writer")
	c.must("continuous writer on cl", err)
	t.Cleanup(func() {
		if c.writer != nil {
			c.writer.Stop()
		}
	})
	return c
}

// stallWindow is how long after a fault the writer's stalls are counted. The tests log them
// (never assert them: the machine is loaded) and assert that nothing acknowledged is lost;
// 15 s shows any stall a failover causes (a writer stuck past it is reported when it is
// killed) and keeps `make test` under 30 minutes with two MooseFS releases. `make bench`
// measures the 30 s after the fault.
const stallWindow = 15 * time.Second

// fault is one injected failure: its name and when it was injected.
type fault struct {
	what string
	at   time.Time
}

// stopWriter stops the continuous writer on cl, logs how it felt each fault (never asserted:
// the machine is loaded), and reads back every file it acknowledged through a fresh mount on
// c1: none may be lost or wrong.
func (c *cluster) stopWriter(ctx context.Context, faults ...fault) (lost []string) {
	c.t.Helper()
	if len(faults) > 0 { // measure the whole window after the last fault
		time.Sleep(time.Until(faults[len(faults)-1].at.Add(stallWindow)))
	}
	res := c.writer.Stop()
	c.writer = nil
	if err := res.Err(); err != nil {
		c.t.Errorf("continuous writer: %v; its acknowledged files are read back all the same", err)
	} else if res.KillWait > time.Second {
		c.t.Logf("the writer was stuck in a write: it exited %v after SIGKILL (its last write completed %v before the kill)",
			res.KillWait.Round(time.Millisecond), res.End.Sub(res.Times[len(res.Times)-1]).Round(time.Millisecond))
	}
	all := res.Stalls(res.Start, res.End.Sub(res.Start))
	c.t.Logf("continuous writer: %d files acknowledged in %v, %d failed writes %v; whole run: %s",
		len(res.Acked), res.End.Sub(res.Start).Round(time.Millisecond), res.Failures, res.FirstFailures, all)
	for i, f := range faults {
		window := stallWindow // up to the next fault
		if i+1 < len(faults) {
			window = min(window, faults[i+1].at.Sub(f.at))
		}
		c.t.Logf("writer after %s: %s", f.what, res.Stalls(f.at, window))
	}
	began := time.Now()
	lost, err := res.VerifyLost(ctx, c.l, lab.HostChunk, c.mayLose)
	c.must("read-back of the writer's files", err)
	if len(lost) > 0 {
		c.t.Logf("%d of %d acknowledged files read back; taken back in the fault's window: %v", len(res.Acked)-len(lost), len(res.Acked), lost)
		return lost
	}
	c.t.Logf("all %d acknowledged files read back through a fresh mount on c1 (in %v)", len(res.Acked), time.Since(began).Round(time.Millisecond))
	return nil
}

func (c *cluster) startNode(ctx context.Context, host, start string) error {
	return ha.StartNode(ctx, c.l, ha.NodeSpec{Host: host, Bin: c.bin, Start: start, Cluster: c.name, NATS: c.urls, Extra: append(slices.Clone(nodeFlags), c.extra...), Receive: c.receive})
}

func (c *cluster) must(what string, err error) {
	c.t.Helper()
	if err != nil {
		c.t.Fatalf("%s: %v", what, err)
	}
}

// checkVIP stops the sampler: at no sample may two hosts hold the VIP.
func (c *cluster) checkVIP() {
	if c.vip == nil {
		return
	}
	hist, n, err := c.vip.Stop()
	c.vip = nil
	c.t.Logf("VIP owners over %d samples (every 10 ms): %s", n, strings.Join(hist, "; "))
	if err != nil {
		c.t.Error(err)
	}
}

// write writes a file through the client's mount and remembers it.
func (c *cluster) write(ctx context.Context, name string) {
	c.t.Helper()
	data := fmt.Sprintf("%s written at %s\n", name, time.Now().Format(time.RFC3339Nano))
	c.must("write "+name, c.l.WriteFile(ctx, lab.HostClient, name, []byte(data)))
	c.files[name] = data
}

// verify reads back every file written so far.
func (c *cluster) verify(ctx context.Context) {
	c.t.Helper()
	for name, want := range c.files {
		got, err := c.l.ReadFile(ctx, lab.HostClient, name)
		if err != nil || string(got) != want {
			c.t.Fatalf("%s after the failover: %q, %v; want %q", name, got, err, want)
		}
	}
}

// caughtUp waits until standby holds every line the master has.
func (c *cluster) caughtUp(ctx context.Context, standby string) {
	c.t.Helper()
	c.must("standby catches up", ha.WaitCaughtUp(ctx, c.lease, standby))
}

// streamEpoch waits until the stream's newest batch carries the fencing epoch want: the new
// master's shipper stamps what it ships with the lease revision that made it the master.
func (c *cluster) streamEpoch(ctx context.Context, want uint64) {
	c.t.Helper()
	nc, err := c.l.ConnectNATS(lab.HostClient, c.urls...)
	c.must("connect", err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	c.must("jetstream", err)
	var got stream.BatchInfo
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := js.Stream(ctx, stream.StreamName(c.name)); err == nil {
			if info, err := st.Info(ctx); err == nil && info.State.LastSeq > 0 {
				if m, err := st.GetMsg(ctx, info.State.LastSeq); err == nil {
					if got, err = stream.ParseBatchHeader(m.Header); err == nil && got.Epoch == want {
						return
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("the stream's newest batch has epoch %d (versions %d-%d); want %d", got.Epoch, got.FirstVersion, got.LastVersion, want)
}

// before writes n files through the mount with ma serving, waits until mb holds every line,
// and returns ma's epoch: the state each failure is injected into.
func (c *cluster) before(ctx context.Context, n int) uint64 {
	c.t.Helper()
	for i := range n {
		c.write(ctx, fmt.Sprintf("before-%d", i))
	}
	c.caughtUp(ctx, lab.HostMasterB)
	return c.waitMaster(ctx, lab.HostMasterA)
}

// waitFailsafeArmed waits until host's node says it may serve on failsafe promises (its
// members record is committed) with ma and mb as members, and its holds had time to be
// answered.
func (c *cluster) waitFailsafeArmed(ctx context.Context, host string) {
	c.t.Helper()
	for {
		b, _ := os.ReadFile(ha.NodeLog(c.l, host))
		// slog's text form of the members: members="[ma mb]"
		if strings.Contains(string(b), "failsafe armed") && strings.Contains(string(b), `members="[ma mb]"`) {
			time.Sleep(time.Second)
			return
		}
		if ctx.Err() != nil {
			c.t.Fatalf("%s's node never armed failsafe", host)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *cluster) waitMaster(ctx context.Context, node string) uint64 {
	c.t.Helper()
	e, err := ha.WaitMaster(ctx, c.lease, node)
	c.must("wait master "+node, err)
	return e
}

// endpoint polls GET path on host's node until it answers want (the HTTP endpoints follow
// the node's state within a health check or a lease poll), and returns the body.
func (c *cluster) endpoint(ctx context.Context, host, path string, want int) []byte {
	c.t.Helper()
	var code int
	var body []byte
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if code, body, err = ha.Endpoint(ctx, c.l, host, path); err == nil && code == want {
			return body
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("GET %s on %s: %d %s, %v; want %d", path, host, code, body, err, want)
	return nil
}

// checkEndpoints checks the HTTP endpoints of both nodes with master serving and the other
// standing by: /master 200 only on master, /standby 200 only on the other, /health 200 on
// both, and /status naming master and epoch.
func (c *cluster) checkEndpoints(ctx context.Context, master, standby string, epoch uint64) {
	c.t.Helper()
	c.endpoint(ctx, master, "/master", http.StatusOK)
	c.endpoint(ctx, standby, "/master", http.StatusServiceUnavailable)
	c.endpoint(ctx, standby, "/standby", http.StatusOK)
	c.endpoint(ctx, master, "/standby", http.StatusServiceUnavailable)
	// A lag limit of 0 lines holds only while the stream is idle: the standby folds within
	// FOLD_EVERY (30 s), so the answer may be either; it must parse and name the limit.
	var lag struct {
		MaxLag uint64 `json:"max_lag_lines"`
	}
	if _, body, err := ha.Endpoint(ctx, c.l, standby, "/standby?lag=0"); err != nil || json.Unmarshal(body, &lag) != nil || lag.MaxLag != 0 {
		c.t.Fatalf("/standby?lag=0 on %s: %s, %v", standby, body, err)
	}
	for _, h := range []string{master, standby} {
		var health struct {
			OK    bool               `json:"ok"`
			Mfsha string             `json:"mfsha"`
			Loops map[string]float64 `json:"loops_age_seconds"`
		}
		body := c.endpoint(ctx, h, "/health", http.StatusOK)
		if err := json.Unmarshal(body, &health); err != nil || !health.OK || health.Mfsha == "" || len(health.Loops) == 0 {
			c.t.Fatalf("/health on %s: %s, %v; want ok, the version and the loops", h, body, err)
		}
	}
	var st struct {
		Failover struct {
			Lease struct {
				State, Holder string
				Epoch         uint64
			}
			Nodes []struct{ Name, Role, Mfsha string }
		}
		Timelines []struct{ Writer string }
	}
	body := c.endpoint(ctx, standby, "/status", http.StatusOK)
	if err := json.Unmarshal(body, &st); err != nil {
		c.t.Fatalf("/status on %s: %v: %s", standby, err, body)
	}
	l := st.Failover.Lease
	if l.State != failover.StateMaster || l.Holder != master || l.Epoch != epoch || len(st.Failover.Nodes) != 2 ||
		len(st.Timelines) == 0 || st.Timelines[len(st.Timelines)-1].Writer == "" || st.Failover.Nodes[0].Mfsha == "" {
		c.t.Fatalf("/status on %s: %s; want %s master at epoch %d, two nodes, the versions of the writers", standby, body, master, epoch)
	}
}

// TestFailoverKillMasterAndSwitchBack: kill -9 of mfsmaster on ma: ma's node fences and
// releases the lease at once, mb promotes, and a write issued right after the kill completes;
// ma's node stands by, and a planned switchover gives the master back to ma with nothing lost.
func TestFailoverKillMasterAndSwitchBack(t *testing.T) {
	c := newCluster(t, "k")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	epoch1 := c.before(ctx, 5)
	c.checkEndpoints(ctx, lab.HostMasterA, lab.HostMasterB, epoch1)

	killed := time.Now()
	c.must("kill -9 mfsmaster on ma", c.l.KillProcs(ctx, lab.HostMasterA, "mfsmaster"))
	faults := []fault{{"kill -9 of mfsmaster on ma", killed}}
	c.write(ctx, "after-kill")
	t.Logf("a write issued right after kill -9 completed %v later", time.Since(killed).Round(10*time.Millisecond))
	epoch2 := c.waitMaster(ctx, lab.HostMasterB)
	if epoch2 <= epoch1 {
		t.Fatalf("epoch went from %d to %d; want it to grow", epoch1, epoch2)
	}
	c.verify(ctx)
	if owner, err := c.l.VIPOwner(); err != nil || owner != lab.HostMasterB {
		t.Fatalf("VIP owner %q, %v; want mb", owner, err)
	}
	c.streamEpoch(ctx, epoch2)
	c.checkEndpoints(ctx, lab.HostMasterB, lab.HostMasterA, epoch2)

	// ma's node stands by by itself; once caught up, hand the master back.
	c.write(ctx, "on-mb")
	c.caughtUp(ctx, lab.HostMasterA)
	capture, err := ha.CaptureARP(c.l, lab.HostClient) // what a client's host hears of ma's takeover
	c.must("capture ARP on cl", err)
	switched := time.Now()
	c.switchover(ctx, lab.HostMasterA)
	faults = append(faults, fault{"switchover to ma", switched})
	epoch3 := c.waitMaster(ctx, lab.HostMasterA)
	if epoch3 <= epoch2 {
		t.Fatalf("epoch went from %d to %d; want it to grow", epoch2, epoch3)
	}
	onMA := time.Now()
	c.write(ctx, "back-on-ma")
	c.verify(ctx)
	c.streamEpoch(ctx, epoch3)
	// The announcement's schedule runs for its last offset after mfsmaster serves on ma.
	def := failover.DefaultConfig()
	time.Sleep(time.Until(onMA.Add(def.Announce[len(def.Announce)-1] + time.Second)))
	grat, err := capture.Stop()
	c.must("ARP capture", err)
	maMAC, err := c.l.HostMAC(lab.HostMasterA)
	c.must("ma's MAC", err)
	checkAnnouncements(t, grat, maMAC, switched)
	out, err := c.l.Exec(ctx, lab.HostClient, append([]string{c.bin, "status", "--cluster", c.name, "--nats", strings.Join(c.urls, ",")},
		c.l.NATSFlags(natsconn.RoleReader)...)...)
	c.must("status", err)
	t.Logf("mfsha status:\n%s", out)
	for _, want := range []string{"held by ma", fmt.Sprintf("epoch %d", epoch3), "mb", "standby", "mfsha " + mfshaVersion(t, c.bin)} {
		if !strings.Contains(string(out), want) {
			t.Errorf("status lacks %q", want)
		}
	}
	out, err = c.l.Exec(ctx, lab.HostClient, append([]string{c.bin, "status", "--json", "--cluster", c.name, "--nats", strings.Join(c.urls, ",")},
		c.l.NATSFlags(natsconn.RoleReader)...)...)
	c.must("status --json", err)
	var st struct {
		Failover struct{ Lease struct{ Holder string } }
	}
	if i := strings.IndexByte(string(out), '{'); i > 0 { // Exec's output holds stderr's log too
		out = out[i:]
	}
	if err := json.Unmarshal(out, &st); err != nil || st.Failover.Lease.Holder != lab.HostMasterA {
		t.Errorf("mfsha status --json: %v, holder %q; want ma:\n%s", err, st.Failover.Lease.Holder, out)
	}
	// Every log starts with the version that wrote it (after the lab's own "=== lab" line).
	for _, h := range []string{lab.HostMasterA, lab.HostMasterB} {
		b, err := os.ReadFile(ha.NodeLog(c.l, h))
		var first string
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, "=== lab") {
				first = line
				break
			}
		}
		if err != nil || !strings.Contains(first, `msg="mfsha `+mfshaVersion(t, c.bin)+`"`) {
			t.Errorf("%s node log starts with %q, %v; want the version", h, first, err)
		}
	}
	// Last: the writer's window may see a false failover on a loaded machine, which must
	// not lose a file either.
	c.stopWriter(ctx, faults...)
}

// switchover runs `mfsha switchover --to to` on cl, with the node role's credentials, and
// logs what it printed.
func (c *cluster) switchover(ctx context.Context, to string) {
	c.t.Helper()
	out, err := c.l.Exec(ctx, lab.HostClient, append([]string{c.bin, "switchover", "--to", to, "--cluster", c.name, "--nats", strings.Join(c.urls, ",")},
		c.l.NATSFlags(natsconn.RoleNode)...)...)
	c.t.Logf("mfsha switchover --to %s:\n%s", to, out)
	c.must("switchover", err)
}

// mfshaVersion is the version bin reports (mfsha version: "mfsha VERSION (...)").
func mfshaVersion(t *testing.T, bin string) string {
	out, err := exec.Command(bin, "version").Output()
	f := strings.Fields(string(out))
	if err != nil || len(f) < 2 || f[0] != "mfsha" {
		t.Fatalf("%s version: %q, %v", bin, out, err)
	}
	return f[1]
}

// TestFailoverPartitions: a standby cut off from the master but not from NATS does not promote
// while the lease is held; a master cut off from NATS but not from the standby serves on, on
// the standby's failsafe promises; cut off from both, it fences itself before the standby
// promotes (the VIP is never held twice), and what it wrote meanwhile reaches the new master
// through the standby's metalogger.
func TestFailoverPartitions(t *testing.T) {
	c := newCluster(t, "p")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	epoch := c.before(ctx, 3)

	// The standby loses the master (its metalogger and chunkserver too), not NATS.
	c.must("cut mb from ma", c.l.CutRoutes(lab.HostMasterB, lab.HostMasterA))
	faults := []fault{{"mb cut off from ma", time.Now()}}
	time.Sleep(2 * mustDuration(t, leaseTTL))
	rec, _, err := c.lease.Read(ctx)
	c.must("read lease", err)
	if rec.Holder != lab.HostMasterA || rec.Epoch != epoch || rec.State != failover.StateMaster {
		t.Fatalf("with mb cut off from ma for two TTLs the lease is %+v; want ma's, epoch %d", rec, epoch)
	}
	c.write(ctx, "while-mb-cut-off")
	c.must("restore mb", c.l.RestoreRoutes(lab.HostMasterB, lab.HostMasterA))
	c.caughtUp(ctx, lab.HostMasterB)

	// The master loses NATS, not mb: mb keeps promising not to take the lease, so ma serves
	// on (failsafe), the same mfsmaster, past the lease's TTL.
	c.waitFailsafeArmed(ctx, lab.HostMasterA)
	pids, err := c.l.Procs(lab.HostMasterA, "mfsmaster")
	c.must("mfsmaster on ma", err)
	c.must("cut ma from NATS", c.l.CutRoutes(lab.HostMasterA, lab.HostNATS1, lab.HostNATS2, lab.HostNATS3))
	cut := time.Now()
	faults = append(faults, fault{"ma cut off from NATS", cut})
	c.write(ctx, "after-nats-cut")
	t.Logf("a write issued right after the master lost NATS completed %v later", time.Since(cut).Round(10*time.Millisecond))
	time.Sleep(2 * mustDuration(t, leaseTTL))
	c.write(ctx, "on-promises")
	if rec, rev, err := c.lease.Read(ctx); err != nil || (rev != 0 && rec.Holder != lab.HostMasterA) {
		t.Fatalf("with ma cut off from NATS only, the lease is %+v at %d (%v); want ma's or expired", rec, rev, err)
	}
	if now, err := c.l.Procs(lab.HostMasterA, "mfsmaster"); err != nil || !slices.Equal(now, pids) {
		t.Fatalf("mfsmaster on ma: pids %v (%v), were %v; want the same process serving on promises", now, err, pids)
	}
	time.Sleep(2 * time.Second) // mb's metalogger has the line on disk
	// The writes went to ma, which could not ship them (no NATS): ma's changelog has them,
	// and so has mb's metalogger, the only way they can reach mb. Checked now: once mb
	// serves, its metalogger may find a gap to the new master's first line (the promotion's
	// UNLOCK and NEXTCHUNKID lines) and delete its changelog_ml files, as MooseFS does.
	for _, name := range []string{"after-nats-cut", "on-promises"} {
		created := "CREATE(1," + name + ","
		if !changelogsHold(t, c.l.MasterDataDir(lab.HostMasterA), "changelog.*.mfs", created) {
			t.Fatalf("ma's changelogs lack %q: the write did not go to ma", created)
		}
		if !changelogsHold(t, c.l.MetaloggerDataDir(lab.HostMasterB), "changelog_ml*.mfs", created) {
			t.Fatalf("mb's metalogger changelogs lack %q: ma's write did not reach mb through it", created)
		}
	}

	// Then ma loses mb too: no promise covers it any more. It must fence itself before mb's
	// promise ends and mb promotes. What ma acknowledged from the cut until it dropped the VIP
	// exists on ma alone (no NATS, no metalogger): MooseFS's own recovery point, as for a
	// power-off, here at most a missed round of promises long (failsafe.Coverage.ServeUntil).
	// Those files may be lost, and only if ma's files then hold lines nobody else got.
	cut2 := time.Now()
	c.must("cut ma from mb", c.l.CutRoutes(lab.HostMasterA, lab.HostNATS1, lab.HostNATS2, lab.HostNATS3, lab.HostMasterB))
	faults = append(faults, fault{"ma cut off from NATS and mb", cut2})
	for {
		if owner, err := c.l.VIPOwner(); err == nil && owner != lab.HostMasterA {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("ma kept the VIP after it lost NATS and mb")
		}
		time.Sleep(10 * time.Millisecond)
	}
	vipGone := time.Now()
	t.Logf("ma dropped the VIP %v after it lost mb too", vipGone.Sub(cut2).Round(10*time.Millisecond))
	// The window opens before the cut: mfsmaster answers a client before it sends the line
	// to its metaloggers (on a later turn of its event loop), and a line in flight when the
	// route went down never reached mb. On an idle machine that is milliseconds; a CI run
	// with every package's tests at once once lost ~1 s of files acknowledged before the cut.
	c.mayLose = func(acked time.Time) bool {
		return acked.After(cut2.Add(-time.Second)) && acked.Before(vipGone.Add(200*time.Millisecond))
	}
	c.waitMaster(ctx, lab.HostMasterB)
	if pids, err := c.l.Procs(lab.HostMasterA, "mfsmaster"); err != nil || len(pids) > 0 {
		t.Fatalf("mfsmaster still runs on ma (pids %v, %v) after mb took over", pids, err)
	}
	// mb serves ma's writes from its metalogger (verify reads them through the VIP).
	c.verify(ctx)
	c.must("restore ma", c.l.RestoreRoutes(lab.HostMasterA, lab.HostNATS1, lab.HostNATS2, lab.HostNATS3, lab.HostMasterB))
	// No new named file through cl here: cl saw files of ma's lost lines, and mb gives their
	// inode numbers to new files; cl's kernel may serve such a file from the pages it cached
	// for the lost one (seen: a file written on mb read back with a lost file's bytes after
	// its own). The server's data is right (new chunk ids, see chunklock.ChunkSkip): the
	// writer's files, mb's included, are read back through a fresh mount on c1.
	c.caughtUp(ctx, lab.HostMasterA) // ma stands by on its own once it reaches NATS again
	c.verify(ctx)
	unshipped, _ := filepath.Glob(filepath.Join(c.l.HostDir(lab.HostMasterA), "archive", "*-unshipped"))
	if lost := c.stopWriter(ctx, faults...); len(lost) > 0 {
		if len(unshipped) == 0 {
			t.Fatalf("acknowledged files %v lost, but ma's archive holds no unshipped lines", lost)
		}
		t.Logf("%d acknowledged files taken back by the double fault (ma's lines nobody else got, archived in %s)", len(lost), filepath.Base(unshipped[0]))
	}
}

// changelogsHold reports whether a line of a file matching pattern in dir contains want.
func changelogsHold(t *testing.T, dir, pattern, want string) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), want) {
			return true
		}
	}
	t.Logf("%s: no %q in %v", dir, want, files)
	return false
}

// TestFailoverPowerOffAndReturn: the master's host loses power (every process killed, link
// cut, its addresses gone); the lease expires and mb promotes. When ma comes back and its node
// starts again, it finds the lease held and stands by.
func TestFailoverPowerOffAndReturn(t *testing.T) {
	c := newCluster(t, "o")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	epoch := c.before(ctx, 3)

	off := time.Now()
	faults := []fault{{"power-off of ma", off}}
	c.must("cut ma's link", c.l.CutLink(lab.HostMasterA))
	// MooseFS replicates to its metaloggers after it answers the client: matoclserv writes
	// the reply in the serve call that made the change, while matomlserv sends the changelog
	// line on the next turn of the event loop (4.59.2 mfsmaster/matoclserv.c and
	// matomlserv.c). A power-off between the two takes back an acknowledged change that only
	// ma ever had; no standby can have it. So one file acknowledged around the cut may be
	// wrong, and then ma's files must hold lines nobody else got (its archive says
	// "unshipped"). Every other acknowledged file must read back.
	cutDone := time.Now()
	c.mayLose = func(acked time.Time) bool {
		return acked.After(off.Add(-200*time.Millisecond)) && acked.Before(cutDone.Add(200*time.Millisecond))
	}
	c.must("power off ma", c.l.KillHost(ctx, lab.HostMasterA))
	c.must("ma's addresses go with its power", c.l.DelVIP(lab.HostMasterA))
	c.write(ctx, "after-power-off")
	t.Logf("a write issued right after the power-off completed %v later (lease TTL %s)", time.Since(off).Round(10*time.Millisecond), leaseTTL)
	if e := c.waitMaster(ctx, lab.HostMasterB); e <= epoch {
		t.Fatalf("epoch %d after the failover, was %d", e, epoch)
	}
	c.verify(ctx)

	c.must("ma's link back", c.l.RestoreLink(lab.HostMasterA))
	c.must("ma's metalogger", c.l.StartMetalogger(ctx, lab.HostMasterA))
	c.must("ma's node again", c.startNode(ctx, lab.HostMasterA, "ship"))
	c.write(ctx, "after-return")
	c.caughtUp(ctx, lab.HostMasterA)
	if owner, err := c.l.VIPOwner(); err != nil || owner != lab.HostMasterB {
		t.Fatalf("VIP owner %q, %v after ma's return; want mb", owner, err)
	}
	archive := c.checkArchive(lab.HostMasterA, "before-0", "before-1", "before-2")
	c.verify(ctx)
	if lost := c.stopWriter(ctx, faults...); len(lost) > 1 || (len(lost) == 1 && !strings.HasSuffix(archive, "-unshipped")) {
		c.t.Fatalf("acknowledged files %v lost; ma's archive %s: at most one, and only with lines only ma had (archive TIME-unshipped)", lost, archive)
	}
}

// checkArchive checks that host's node moved its old master files aside when it came back as
// a standby: one ARCHIVE/TIME-standby directory (TIME-unshipped, with the node's warning, when
// the master died holding lines it had not shipped: a power-off mid-write does that) holding
// a metadata file and changelogs with the creation of each file in created (written while
// host was the master), and nothing of them left in the master's DATA_PATH.
func (c *cluster) checkArchive(host string, created ...string) string {
	c.t.Helper()
	dirs, err := filepath.Glob(filepath.Join(c.l.HostDir(host), "archive", "*"))
	if err != nil || len(dirs) != 1 || !(strings.HasSuffix(dirs[0], "-standby") || strings.HasSuffix(dirs[0], "-unshipped")) {
		c.t.Fatalf("%s's archive: %v (%v); want one TIME-standby or TIME-unshipped directory", host, dirs, err)
	}
	c.t.Logf("%s's old master files archived in %s", host, filepath.Base(dirs[0]))
	if strings.HasSuffix(dirs[0], "-unshipped") {
		b, _ := os.ReadFile(ha.NodeLog(c.l, host))
		if !strings.Contains(string(b), "they are archived, never shipped nor mixed in") {
			c.t.Errorf("%s archived unshipped files without saying so in its log", host)
		}
	}
	if meta, _ := filepath.Glob(filepath.Join(dirs[0], "metadata*.mfs*")); len(meta) == 0 {
		c.t.Errorf("%s holds no metadata file", dirs[0])
	}
	for _, name := range created {
		if !changelogsHold(c.t, dirs[0], "changelog*.mfs*", "CREATE(1,"+name+",") {
			c.t.Errorf("%s's archived changelogs lack the creation of %s, written while it was the master", host, name)
		}
	}
	for _, pat := range []string{"metadata*.mfs*", "changelog*.mfs*"} {
		if left, _ := filepath.Glob(filepath.Join(c.l.MasterDataDir(host), pat)); len(left) > 0 {
			c.t.Errorf("%s's master DATA_PATH still holds %v after the archive", host, left)
		}
	}
	return dirs[0]
}

func mustDuration(t *testing.T, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
