"""A test's view of a store's blobs, the same for loose (format 1) and packed (format 2) stores."""

from __future__ import annotations

from plait.storage.packs import KIND_TREE


class Blobs:
    """What a test sees of a store's blobs, loose (format 1) or packed (format 2) alike."""

    @staticmethod
    def stored(store, *, nodes: bool = False) -> dict[str, int]:
        """Return ``{digest: size}`` of every blob of file contents stored: loose, or in a pack an
        index file lists.

        :param nodes: count a tree's nodes too (format 2 keeps them in packs of their own).
        """
        out = {k.rsplit("/", 1)[-1]: n for k, n in store.backend.find("blobs").items()}
        if store.format == 2:
            store.blobs.index.refresh()
            packs = {k.rsplit("/", 1)[-1] for k in store.backend.find("packs")}
            for pack_id, entries in store.blobs.index.packs().items():
                if pack_id in packs:
                    out.update((e.digest, e.raw_len) for e in entries if nodes or e.kind != KIND_TREE)
        return out

    @staticmethod
    def keys(store, *, nodes: bool = False) -> dict[str, int]:
        """Return :meth:`stored` as ``{"blobs/<ab>/<digest>": size}``: the names format 1 gives them."""
        return {f"blobs/{d[:2]}/{d}": n for d, n in Blobs.stored(store, nodes=nodes).items()}

    @staticmethod
    def where(store, digest: str) -> tuple[str, int, int]:
        """Return ``(key, start, end)``: the stored bytes of a blob (a loose file, or a pack's range)."""
        location = store.blobs.locate(digest) if store.format == 2 else None
        if location is None:
            key = f"blobs/{digest[:2]}/{digest}"
            return key, 0, store.backend.size(key)
        start = location.entry.offset
        return f"packs/{location.pack_id[:2]}/{location.pack_id}", start, start + location.entry.stored_len

    @staticmethod
    def overwrite(store, digest: str, data: bytes) -> None:
        """Replace a blob's stored bytes with ``data`` (same length in a pack: its neighbours stay readable)."""
        key, start, end = Blobs.where(store, digest)
        raw = store.backend.read(key)
        if not key.startswith("packs/"):
            store.backend.write(key, data)
            return
        assert len(data) == end - start, "a blob inside a pack is damaged in place, at its own length"
        store.backend.write(key, raw[:start] + data + raw[end:])

    @staticmethod
    def flip(store, digest: str, at: int = 0) -> None:
        """Flip one bit of a blob's stored bytes."""
        key, start, end = Blobs.where(store, digest)
        raw = bytearray(store.backend.read(key)[start:end])
        raw[at] ^= 1
        Blobs.overwrite(store, digest, bytes(raw))

    @staticmethod
    def remove(store, digest: str) -> None:
        """Lose a blob: its loose file, or the whole pack holding it."""
        key, _, _ = Blobs.where(store, digest)
        store.backend.delete(key)
