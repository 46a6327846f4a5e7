"""Incident reports: what happened, why the workload was exposed, and what to do now.

Layer 5 (``kubesentinel report``): ``build`` and ``period`` gather a data-only report
(``models/report.py``) from the store; ``containment`` plans the steps for the workload;
``formats`` renders it as Markdown, HTML or JSON from the templates in ``templates/``.
"""
