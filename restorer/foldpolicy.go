package restorer

import (
	"fmt"
	"time"
)

// The fold policy, driven by what the folds cost (foldcost.go).
//
// A promotion replays the lines the standby has not folded yet on top of mfsmaster's own load
// of the metadata, so the lines waiting cost the promotion PerLine x waiting seconds over that
// floor. A fold costs mostly loading and saving the whole metadata (Fixed: at 10M inodes about
// 50 s of a core, whatever the number of lines, see README "Sizing"), so folding often buys a
// short promotion with a busy core. The policy:
//
//   - Replay bound: fold once the waiting lines would take FoldReplay (default 1 s) to replay,
//     by the estimate PerLine; FOLD_LINES and FOLD_EVERY still fold as before.
//   - CPU bound, which wins: after a fold whose mfsmaster used C seconds of CPU, no unforced
//     fold starts before C / (FoldCPUPercent/100) has passed since that fold began; with the
//     default 50 the folds use at most half a core on average. While the CPU bound holds
//     folds back, the promotion's extra time grows beyond FoldReplay: at 10M inodes and
//     5,000 lines/s about 100 s of lines, 500,000, wait at worst (README "Sizing").
//
// A forced fold (a promotion) ignores both. Only mfsmaster's CPU counts (from its rusage);
// mfsha's own copying of the lines is small beside it.
const (
	DefaultFoldCPUPercent = 50
	DefaultFoldReplay     = time.Second
)

// foldDue says whether an unforced fold should run now that waiting lines wait (changed: one
// of them changes metadata, see fold), and why, for the log. Called by the folder only.
func (s *Standby) foldDue(waiting int64, changed bool, now time.Time) (bool, string) {
	if waiting <= 0 {
		return false, ""
	}
	s.costs.mu.Lock()
	fc, folds := s.costs.last, s.costs.folds
	s.costs.mu.Unlock()
	var why string
	switch {
	case waiting >= int64(s.cfg.FoldLines):
		why = fmt.Sprintf("%d lines wait (FOLD_LINES %d)", waiting, s.cfg.FoldLines)
	case changed && now.Sub(s.lastFold) >= s.cfg.FoldEvery:
		why = fmt.Sprintf("FOLD_EVERY %v passed", s.cfg.FoldEvery)
	case changed && folds > 0 && fc.PerLine*float64(waiting) >= s.cfg.FoldReplay.Seconds():
		why = fmt.Sprintf("replaying the %d waiting lines would take about %.2f s (FOLD_REPLAY %v)", waiting, fc.PerLine*float64(waiting), s.cfg.FoldReplay)
	default:
		return false, ""
	}
	if folds > 0 {
		rest := time.Duration(fc.CPUSeconds / (float64(s.cfg.FoldCPUPercent) / 100) * float64(time.Second))
		if now.Sub(s.lastFoldStart) < rest {
			return false, ""
		}
	}
	return true, why
}
