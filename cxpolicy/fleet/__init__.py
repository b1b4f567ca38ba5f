"""Running a fleet of replicas: signed policy bundles, a freeze switch, anomaly signals.

Input: policy sources (for a bundle), a shared freeze store, the stream of decisions a
replica makes. Output: bundle files, the state each replica reports at `/v1/status`, the
decisions a freeze turns into escalations, and anomaly flags.

The sub-modules, one concern each (none is imported by `import cxpolicy`):

- `bundle`: build, sign, verify and read a bundle (a deterministic tar.gz with a manifest).
- `source`: an `Engine` that serves a bundle from a file, a directory or an HTTP(S) URL,
  polling it (ETag) and keeping the last good bundle when a new one is refused.
- `freeze`: freezes, their stores (SQLite, PostgreSQL with LISTEN/NOTIFY) and the watcher
  that keeps each replica's view of them current.
- `anomalies`: rolling per-key rates compared with their own baseline (EWMA + z-score,
  Poisson tail for low counts).
- `service`: what the decision service adds per decision and the fleet endpoints.
"""
