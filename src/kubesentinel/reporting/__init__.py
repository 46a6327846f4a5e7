"""Layer 5: incident and period reports (``kubesentinel report``).

``build`` and ``period`` gather a data-only report (``models/report.py``) from the store;
``formats`` renders it as Markdown, HTML or JSON from the templates in ``templates/``.
"""
