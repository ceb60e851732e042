package restorer

import "github.com/prometheus/client_golang/prometheus"

// StandbyMetrics are the standby's Prometheus series.
type StandbyMetrics struct {
	Materialized    prometheus.Gauge
	Newest          prometheus.Gauge
	Local           prometheus.Gauge
	Pending         prometheus.Gauge
	LagSeconds      prometheus.Gauge
	FoldSeconds     prometheus.Histogram
	Errors          prometheus.Counter
	Gap             prometheus.Gauge
	MetaloggerLines prometheus.Counter
	Cost            *FoldCostMetrics // foldcost.go
}

// NewStandbyMetrics creates the series and registers them with reg (nil: not registered).
func NewStandbyMetrics(reg prometheus.Registerer) *StandbyMetrics {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "mfsha", Subsystem: "standby", Name: name, Help: help})
	}
	m := &StandbyMetrics{
		Materialized: g("materialized_version", "Version of the materialized metadata (the next change id)."),
		Newest:       g("stream_version", "Newest version shipped to the stream."),
		Local:        g("local_version", "Newest version copied to the standby's disk (DIR/pending.mfs)."),
		Pending:      g("pending_lines", "Lines shipped but not yet folded into the materialized metadata."),
		LagSeconds:   g("lag_seconds", "Age of the newest shipped line while lines are pending; 0 when caught up."),
		FoldSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "mfsha", Subsystem: "standby", Name: "fold_seconds",
			Help: "Duration of a fold (download or local base, lines, mfsmaster -a restore, install).", Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)}),
		MetaloggerLines: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "mfsha", Subsystem: "standby", Name: "metalogger_lines_total",
			Help: "Lines taken from the local metalogger because the stream did not have them yet."}),
		Gap: g("gap", "1 while folding is stopped at a version missing from the stream (the log names the range)."),
		Errors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "mfsha", Subsystem: "standby", Name: "errors_total",
			Help: "Rounds that failed (NATS, gap, corrupt batch, mfsmaster); the last good metadata stays."}),
		Cost: newFoldCostMetrics(),
	}
	if reg != nil {
		reg.MustRegister(m.Materialized, m.Newest, m.Local, m.Pending, m.LagSeconds, m.FoldSeconds, m.Errors, m.Gap, m.MetaloggerLines)
		reg.MustRegister(m.Cost.collectors()...)
	}
	return m
}
