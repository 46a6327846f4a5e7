"""The forensic vault (layer 4): policy-aware retention and tamper evidence for what the
monitor stores. ``policy`` gives each event a retention class; ``merkle``, ``keys`` and
``checkpoint`` make the store's records provable; the store integration lives beside them."""
