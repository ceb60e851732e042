package failover

import "github.com/prometheus/client_golang/prometheus"

// Metrics of a Node, under mfsha_failover_.
type Metrics struct {
	IsMaster         prometheus.Gauge
	MasterVersion    prometheus.Gauge
	Promotions       prometheus.Counter
	PromotionSeconds prometheus.Gauge
	Fences           prometheus.Counter
	Archived         prometheus.Counter
	ShipStopped      prometheus.Gauge
	FailsafeServing  prometheus.Gauge
	FailsafePromises prometheus.Counter
	FailsafeRefused  prometheus.Counter
	Tickles          prometheus.Counter
	LostRepaired     prometheus.Counter
	SaveMode         prometheus.Gauge
}

// NewMetrics registers the metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "mfsha", Subsystem: "failover", Name: name, Help: help})
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "mfsha", Subsystem: "failover", Name: name, Help: help})
	}
	m := &Metrics{
		IsMaster:         g("is_master", "1 while this node holds the lease and serves, else 0."),
		MasterVersion:    g("master_version", "Metadata version the local master last reported to the health check."),
		Promotions:       c("promotions_total", "Times this node became the master from standby."),
		PromotionSeconds: g("promotion_seconds", "Duration of the last promotion, from taking the lease to shipping."),
		Fences:           c("fences_total", "Times this node fenced itself (VIP removed, mfsmaster stopped)."),
		Archived:         c("archived_unshipped_total", "Times local master files with versions the stream lacks were archived."),
		ShipStopped:      g("ship_stopped", "1 when the master's shipper stopped with an error while the master serves."),
		FailsafeServing:  g("failsafe_serving", "1 while this master serves on failsafe promises alone (NATS takes no renewal), else 0."),
		FailsafePromises: c("failsafe_promises_total", "Failsafe promises this node gave a holder (not to take the lease for FAILSAFE_HOLD)."),
		FailsafeRefused:  c("failsafe_refused_total", "Failsafe holds and connection lists this node refused (unsigned, replayed, stale epoch, or it holds the lease)."),
		Tickles:          c("tickles_total", "Tickle ACKs sent after a promotion to the last master's client connections, so that they reconnect at once."),
		LostRepaired:     c("lost_chunks_repaired_total", "Chunks of unfinished writes that no chunkserver had after a failover or restart, repaired as mfsfilerepair does (erased, or back to an older version)."),
		SaveMode:         g("changelog_save_mode", "CHANGELOG_SAVE_MODE of the mfsmaster.cfg this node runs; 0 answers clients before their change is in the changelog (see the README)."),
	}
	if reg != nil {
		reg.MustRegister(m.IsMaster, m.MasterVersion, m.Promotions, m.PromotionSeconds, m.Fences, m.Archived, m.ShipStopped,
			m.FailsafeServing, m.FailsafePromises, m.FailsafeRefused, m.Tickles, m.LostRepaired, m.SaveMode)
	}
	return m
}

func (m *Metrics) setRole(r Role) {
	if r == RoleMaster {
		m.IsMaster.Set(1)
	} else {
		m.IsMaster.Set(0)
		m.ShipStopped.Set(0)
		m.FailsafeServing.Set(0)
	}
}
