"""What every live view shares: a saved snapshot, and how it stops following."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import ipywidgets as w

from nbconductor.widgets.saved_snapshot import SavedSnapshot


class SnapshotView(w.VBox):
    """A live view whose display also carries a deterministic ``text/plain`` and a
    static ``text/html`` snapshot, for saved notebooks, GitHub and nbval.

    In a kernel (the extension sets ``snapshot_publisher``) the snapshot is an output
    of its own, shown just before the widget and kept up to date by :meth:`_save`
    (see :mod:`nbconductor.widgets.saved_snapshot`); the widget's bundle then carries
    no ``text/html`` of its own, which would go stale.

    Subclasses provide ``text()`` and ``snapshot_html()``, set ``_unsubscribe`` (the
    engine subscription) and ``_coalescer`` (the shared refresher), and call
    :meth:`_save` when what they show changed.
    """

    def __init__(self, children: Any = (), **kwargs: Any) -> None:
        super().__init__(children, **kwargs)
        # What the saved snapshot's CSS looks for: a live view rendered next to it
        # (every view has it, also a schedules view with no schedule card yet).
        self.add_class("nbc-live-view")

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, tuple):  # (data, metadata) in some ipywidgets versions
            bundle = bundle[0]
        bundle["text/plain"] = self.text()
        if not self.saved.show(self.snapshot_html(), self._taken()):
            bundle["text/html"] = self.snapshot_html()
        return bundle

    @property
    def saved(self) -> SavedSnapshot:
        """The output that keeps this view's last state in the notebook."""
        saved = self.__dict__.get("_saved")
        if saved is None:
            saved = self.__dict__["_saved"] = SavedSnapshot()
        return saved

    def _taken(self) -> datetime:
        engine = getattr(self, "engine", None)
        return engine.clock.now() if engine is not None else datetime.now(UTC)

    def _save(self, *, final: bool = False) -> float | None:
        """Write what the view shows now into its saved snapshot, if one is displayed;
        returns seconds until a held-back change is due (refresh again then)."""
        return self.saved.offer(self.snapshot_html, self._taken(), final=final)

    def __repr__(self) -> str:
        return self.text()

    def _stop_following(self) -> None:
        """Unsubscribe from the engine and leave the refresher (idempotent)."""
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        self._coalescer.forget(self)
