package lab

import (
	"context"
	"errors"
	"sync"
)

// StartCluster brings the production layout up on the hosts the lab has: it calls Up, then on
// ma initialises a new file system if its DATA_PATH is empty (InitMaster), adds and announces
// the VIP and starts the master; then, in parallel, the metaloggers on ma and mb and the
// chunkservers on mb and c1; and last mounts on cl. Hosts the lab lacks are skipped, so a lab
// of ma and cl gives a master and a mount (metadata operations only: without a chunkserver a
// data write waits for one). It returns the mount point on cl, or "" without cl.
func (l *Lab) StartCluster(ctx context.Context) (string, error) {
	if err := l.Up(ctx); err != nil {
		return "", err
	}
	if l.Has(HostMasterA) {
		if err := l.InitMaster(HostMasterA); err != nil {
			return "", err
		}
		if err := l.AddVIP(HostMasterA); err != nil {
			return "", err
		}
		if err := l.StartMaster(ctx, HostMasterA); err != nil {
			return "", err
		}
		if err := l.AnnounceVIP(HostMasterA); err != nil {
			return "", err
		}
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	start := func(host string, fn func(context.Context, string) error) {
		if !l.Has(host) {
			return
		}
		wg.Go(func() {
			if err := fn(ctx, host); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	start(HostMasterA, l.StartMetalogger)
	start(HostMasterB, l.StartMetalogger)
	start(HostMasterB, l.StartChunkserver)
	start(HostChunk, l.StartChunkserver)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	if !l.Has(HostClient) {
		return "", nil
	}
	return l.Mount(ctx, HostClient)
}
