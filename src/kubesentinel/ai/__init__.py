"""The behavioural analyzer: learns each workload's normal behaviour from Falco events and
scores, explains and keeps learning deviations from it (docs/ai.md).

Modules: ``features`` (event to FeatureVector), ``contract`` (the detector protocol),
``rarity`` and ``rate`` (the detectors), ``window`` (weak signals combined), ``calibrate``
(raw evidence to a calibrated score), ``analyzer`` (all of them, with continued learning and
the poisoning guard), ``modelfile`` (the JSON model format); ``sysdig`` (syscall events as
``sysdig -j`` prints them) and ``stide`` (syscall-sequence model). Imports only ``models``
and ``errors``.
"""
