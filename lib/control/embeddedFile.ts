/**
 * The embedded control store persisted to a JSON file, for a single-process cluster that keeps
 * its volumes across restarts. Kept apart from embedded.ts so that the in-memory store (used by
 * the simulator) imports no file-system code.
 *
 * Durability: every operation that changes a non-leased key returns only after the file was
 * replaced atomically (tmp + fsync + rename), so a crash loses no acknowledged change — only an
 * operation still in flight. Leased keys are not persisted (their owners re-create them). A
 * corrupt file fails the layer with a `corrupt` ControlError naming the file.
 */
import type { Layer } from "effect"
import { fileSnapshotStorage } from "../platform/fileSnapshot.ts"
import type { ControlError, ControlStore } from "./ControlStore.ts"
import { type EmbeddedOptions, layerPersisted } from "./embedded.ts"

export const layerFile = (
  path: string,
  options: Omit<EmbeddedOptions, "storage"> = {},
): Layer.Layer<ControlStore, ControlError> => layerPersisted(fileSnapshotStorage(path), options)
