package shipper

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the shipper's Prometheus series.
type Metrics struct {
	LastShippedVersion prometheus.Gauge
	LastShippedTime    prometheus.Gauge
	Timeline           prometheus.Gauge
	NewestFileVersion  prometheus.Gauge
	LagVersions        prometheus.Gauge
	LagSeconds         prometheus.Gauge
	BytesRead          prometheus.Counter
	BytesRaw           prometheus.Counter
	BytesSent          prometheus.Counter
	CompressionRatio   prometheus.Gauge
	LinesShipped       prometheus.Counter
	Batches            prometheus.Counter
	Errors             *prometheus.CounterVec
	Gap                prometheus.Gauge
	SnapshotVersion    prometheus.Gauge
	SnapshotUploads    prometheus.Counter
	SnapshotBytes      prometheus.Counter
}

// NewMetrics creates the series and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "mfsha", Subsystem: "ship", Name: name, Help: help})
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "mfsha", Subsystem: "ship", Name: name, Help: help})
	}
	m := &Metrics{
		LastShippedVersion: g("last_version", "Version of the last changelog line acknowledged by the stream."),
		LastShippedTime:    g("last_timestamp_seconds", "Timestamp (unix) of the last changelog line acknowledged by the stream."),
		Timeline:           g("timeline", "Timeline being shipped."),
		NewestFileVersion:  g("file_version", "Version of the newest whole line read from the changelog files."),
		LagVersions:        g("lag_versions", "Lines read from the files but not yet acknowledged by the stream."),
		LagSeconds:         g("lag_seconds", "Age of the oldest line read but not yet acknowledged; 0 when caught up."),
		BytesRead:          c("read_bytes_total", "Bytes read from changelog files."),
		BytesRaw:           c("raw_bytes_total", "Changelog bytes acknowledged by the stream, before compression."),
		BytesSent:          c("sent_bytes_total", "Compressed payload bytes acknowledged by the stream."),
		CompressionRatio:   g("compression_ratio", "Raw over compressed bytes, over the process lifetime."),
		LinesShipped:       c("lines_total", "Changelog lines acknowledged by the stream."),
		Batches:            c("batches_total", "Batches acknowledged by the stream."),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mfsha", Subsystem: "ship", Name: "errors_total",
			Help: "Errors by kind: nats (publish or stream), file (reading changelogs), gap, fenced, snapshot."}, []string{"kind"}),
		Gap:             g("gap", "1 while shipping is stopped by a changelog gap."),
		SnapshotVersion: g("snapshot_version", "Version of the newest snapshot uploaded."),
		SnapshotUploads: c("snapshot_uploads_total", "Snapshots uploaded."),
		SnapshotBytes:   c("snapshot_bytes_total", "Snapshot bytes read and uploaded (uncompressed)."),
	}
	if reg != nil {
		reg.MustRegister(m.LastShippedVersion, m.LastShippedTime, m.Timeline, m.NewestFileVersion, m.LagVersions, m.LagSeconds,
			m.BytesRead, m.BytesRaw, m.BytesSent, m.CompressionRatio, m.LinesShipped, m.Batches, m.Errors, m.Gap,
			m.SnapshotVersion, m.SnapshotUploads, m.SnapshotBytes)
	}
	return m
}
