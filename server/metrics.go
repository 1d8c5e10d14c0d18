package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the coordinator's Prometheus metrics, served at /metrics.
type metrics struct {
	registry    *prometheus.Registry
	documents   prometheus.Gauge
	connections prometheus.Gauge
	applied     prometheus.Counter
	rejected    prometheus.Counter
	deferred    prometheus.Counter
	commits     prometheus.Counter
	commitTime  prometheus.Histogram
	batchSize   prometheus.Histogram
	refused     *prometheus.CounterVec
	diffBytes   prometheus.Counter
	streams     *prometheus.CounterVec
	streamPages prometheus.Counter
	pagesServed *prometheus.CounterVec
	leases      prometheus.Gauge
	stepDowns   *prometheus.CounterVec
	forwarded   prometheus.Gauge
	presence    presenceMetrics
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		documents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sqlsync_documents_open", Help: "Documents open on this coordinator.",
		}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sqlsync_connections", Help: "Client connections past Hello.",
		}),
		applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sqlsync_mutations_applied_total", Help: "Mutations applied, accepted or rejected.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sqlsync_mutations_rejected_total", Help: "Mutations rejected by the mutator or a limit.",
		}),
		deferred: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sqlsync_mutations_deferred_total", Help: "Mutations a group commit left to the next one for lack of time (counted each time).",
		}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sqlsync_commits_total", Help: "Durable group commits (one LSN each).",
		}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sqlsync_commit_seconds", Help: "Time to apply and durably commit one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sqlsync_batch_mutations", Help: "Mutations per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sqlsync_connections_closed_total", Help: "Connections the coordinator closed, by Close code.",
		}, []string{"code"}),
		diffBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sqlsync_diff_frame_bytes_total", Help: "Bytes of diff frames sent, before WebSocket compression.",
		}),
	}
	m.streams = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sqlsync_streams_total", Help: "Streamed diffs, by event: started (from the first page), resumed (a client's broken stream, from where it broke), finished.",
	}, []string{"event"})
	m.streamPages = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sqlsync_stream_pages_total", Help: "Pages sent in streamed diffs.",
	})
	m.pagesServed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sqlsync_lazy_pages_total", Help: "Pages lazy replicas asked for, by outcome: sent, or stale (changed since the replica's LSN: it asks again once caught up).",
	}, []string{"outcome"})
	m.leases = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sqlsync_leases_held", Help: "In a cluster: documents this coordinator owns (holds the lease of).",
	})
	m.stepDowns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sqlsync_step_downs_total", Help: "In a cluster: documents this coordinator stopped owning, by reason (fenced: the journal refused a commit; lease_lost).",
	}, []string{"reason"})
	m.forwarded = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sqlsync_connections_forwarded", Help: "In a cluster: client connections forwarded to the documents' owners.",
	})
	m.registry.MustRegister(m.documents, m.connections, m.applied, m.rejected, m.deferred, m.commits,
		m.commitTime, m.batchSize, m.refused, m.diffBytes, m.streams, m.streamPages, m.pagesServed, m.leases, m.stepDowns, m.forwarded,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.presence = newPresenceMetrics(m.registry)
	return m
}
