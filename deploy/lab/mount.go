package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// fuseSuperMagic is statfs's f_type of a FUSE file system.
const fuseSuperMagic = 0x65735546

// MountPoint returns where Mount mounts MooseFS on host.
func (l *Lab) MountPoint(host string) string { return filepath.Join(l.HostDir(host), "mnt") }

// fsName is the source name of the lab's mounts in the mount table; Cleanup finds them by it.
func fsName(lab, host string) string { return "mfslab-" + lab + "-" + host }

// Mount mounts the root of MooseFS on MountPoint(host) with `mfsmount -f -H VIP`, from inside
// the host's network namespace but in the caller's mount namespace, so the caller sees it. It
// returns the mount point once a stat of it works. A dead mount left at the mount point (its
// mfsmount killed) is detached first; if the mount runs already it returns an error wrapping
// ErrRunning.
func (l *Lab) Mount(ctx context.Context, host string) (string, error) {
	h, err := l.host(host)
	if err != nil {
		return "", err
	}
	mnt := l.MountPoint(host)
	if pid, ok := l.Running(host, RoleMount); ok {
		return mnt, fmt.Errorf("lab %s: mount on %s: pid %d: %w", l.cfg.Name, host, pid, ErrRunning)
	}
	if err := detachAll(func(m mountEntry) bool { return m.point == mnt }); err != nil {
		return "", fmt.Errorf("lab %s: mount on %s: %w", l.cfg.Name, host, err)
	}
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return "", fmt.Errorf("lab %s: mount on %s: %w", l.cfg.Name, host, err)
	}
	cfg := filepath.Join(l.ConfigDir(host), "mfsmount.cfg")
	if err := l.writeConfigs(host, map[string][]byte{"mfsmount.cfg": []byte("# options are on the command line\n")}); err != nil {
		return "", err
	}
	name := fsName(l.cfg.Name, host)
	err = l.Start(ctx, ProcSpec{
		Host: host,
		Role: RoleMount,
		Argv: []string{l.cfg.MooseFS.Path("mfsmount"), "-f",
			"-H", l.cfg.VIP.String(), "-P", strconv.Itoa(PortMasterCl),
			"-o", "mfscfgfile=" + cfg,
			"-o", "mfsbind=" + h.Addr.String(),
			"-n", "-o", "allow_other,fsname=" + name,
			mnt},
		Ready: func(ctx context.Context) error { return mountReady(ctx, mnt, name) },
	})
	if err != nil {
		return "", err
	}
	return mnt, nil
}

// mountReady checks that the mount table shows the lab's mount at mnt and that statfs on it
// answers from FUSE. The statfs runs in its own goroutine: on a stuck mount it returns with ctx
// and the goroutine ends when the mount dies.
func mountReady(ctx context.Context, mnt, name string) error {
	mounts, err := readMounts()
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(mounts, func(m mountEntry) bool { return m.point == mnt && m.source == name }) {
		return fmt.Errorf("%s is not mounted yet", mnt)
	}
	errc := make(chan error, 1)
	go func() {
		var st syscall.Statfs_t
		err := syscall.Statfs(mnt, &st)
		if err == nil && st.Type != fuseSuperMagic {
			err = fmt.Errorf("statfs %s: type %#x is not FUSE", mnt, st.Type)
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return fmt.Errorf("statfs %s: %w", mnt, ctx.Err())
	}
}

// Unmount unmounts MooseFS from MountPoint(host) (lazily if it is busy) and waits for its
// mfsmount to exit, killing it after Config.StopTimeout.
func (l *Lab) Unmount(ctx context.Context, host string) error {
	if _, err := l.host(host); err != nil {
		return err
	}
	mnt := l.MountPoint(host)
	if err := syscall.Unmount(mnt, 0); err != nil && !errors.Is(err, syscall.EINVAL) {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			return fmt.Errorf("lab %s: unmount %s on %s: %w", l.cfg.Name, mnt, host, err)
		}
	}
	if _, ok := l.Running(host, RoleMount); !ok {
		l.forget(host, RoleMount)
		return nil
	}
	// mfsmount ends by itself once its file system is unmounted; Stop covers a stuck one.
	return l.Stop(ctx, host, RoleMount)
}

// WriteFile writes data to the file rel (relative to the root of the file system) through the
// host's mount, creating or truncating it, and syncs it. It runs `dd` in a child process, so
// ctx cancellation works even when the mount hangs.
func (l *Lab) WriteFile(ctx context.Context, host, rel string, data []byte) error {
	path, err := l.mountPath(host, rel)
	if err != nil {
		return err
	}
	cmd, err := l.command(ctx, host, []string{"dd", "of=" + path, "bs=1M", "conv=fsync", "status=none"})
	if err != nil {
		return err
	}
	cmd.Stdin = bytes.NewReader(data)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("lab %s: write %s on %s: %w%s", l.cfg.Name, path, host, err, tail("output", out))
	}
	return nil
}

// ReadFile reads the file rel (relative to the root of the file system) through the host's
// mount. It runs `cat` in a child process, so ctx cancellation works even when the mount hangs.
func (l *Lab) ReadFile(ctx context.Context, host, rel string) ([]byte, error) {
	path, err := l.mountPath(host, rel)
	if err != nil {
		return nil, err
	}
	cmd, err := l.command(ctx, host, []string{"cat", path})
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("lab %s: read %s on %s: %w%s", l.cfg.Name, path, host, err, tail("stderr", stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

func (l *Lab) mountPath(host, rel string) (string, error) {
	if _, err := l.host(host); err != nil {
		return "", err
	}
	rel = strings.TrimPrefix(rel, "/")
	if !filepath.IsLocal(rel) {
		return "", fmt.Errorf("lab %s: path %q on %s: not inside the mount", l.cfg.Name, rel, host)
	}
	return filepath.Join(l.MountPoint(host), rel), nil
}

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	point  string
	fstype string
	source string
}

func readMounts() ([]mountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if len(fields) < 5 || sep < 0 || sep+2 >= len(fields) {
			continue
		}
		out = append(out, mountEntry{
			point:  unescapeMount(fields[4]),
			fstype: fields[sep+1],
			source: unescapeMount(fields[sep+2]),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	return out, nil
}

// unescapeMount decodes the \NNN octal escapes of the mount table.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// detachAll lazily unmounts every mount that match selects, deepest first.
func detachAll(match func(mountEntry) bool) error {
	mounts, err := readMounts()
	if err != nil {
		return err
	}
	var points []string
	for _, m := range mounts {
		if match(m) {
			points = append(points, m.point)
		}
	}
	slices.SortFunc(points, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	var errs []error
	for _, p := range slices.Compact(points) {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// unmountLab detaches the mounts of the lab named name: those with its file system name and,
// when dir is not empty, any mount under dir.
func unmountLab(name, dir string) error {
	prefix := fsName(name, "")
	return detachAll(func(m mountEntry) bool {
		if strings.HasPrefix(m.source, prefix) {
			return true
		}
		return dir != "" && (m.point == dir || strings.HasPrefix(m.point, dir+"/"))
	})
}
