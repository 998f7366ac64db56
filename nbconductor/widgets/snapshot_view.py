"""What every live view shares: a saved snapshot, and how it stops following."""

from __future__ import annotations

from typing import Any

import ipywidgets as w


class SnapshotView(w.VBox):
    """A live view whose display also carries a deterministic ``text/plain`` and a
    static ``text/html`` snapshot, for saved notebooks, GitHub and nbval.

    Subclasses provide ``text()`` and ``snapshot_html()``, and set ``_unsubscribe``
    (the engine subscription) and ``_coalescer`` (the shared refresher).
    """

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, tuple):  # (data, metadata) in some ipywidgets versions
            bundle = bundle[0]
        bundle["text/plain"] = self.text()
        bundle["text/html"] = self.snapshot_html()
        return bundle

    def __repr__(self) -> str:
        return self.text()

    def _stop_following(self) -> None:
        """Unsubscribe from the engine and leave the refresher (idempotent)."""
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        self._coalescer.forget(self)
