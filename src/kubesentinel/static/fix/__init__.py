"""`kubesentinel fix`: mechanical edits for the findings that have one (docs/fix.md)."""
