/**
 * Online growth of a volume: which new sizes are allowed, as one pure check shared by the
 * master (`MasterVolume.resize`) and the cluster API (`replivol volume resize`).
 *
 * Why these rules: a copy is never truncated (a shrink would drop bytes an application wrote
 * and break every file system on the volume), sizes are whole sectors like at creation, and the
 * master's per-replica dirty bitmaps grow in place with the region size they were made with (so
 * a resync walking one keeps its meaning), which bounds how far one master session can grow a
 * volume: `regionCountMax` regions of that size.
 */
import { sectorBytes, volumeSizeBytesMax } from "../core/limits.ts"
import { ReplicationError } from "./errors.ts"

/** `1073741824` → `1 GiB (1073741824 bytes)`; sizes that are no whole unit in bytes only. */
const formatBytes = (bytes: number): string => {
  const units: ReadonlyArray<[string, number]> = [["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]]
  const unit = units.find(([, size]) => bytes >= size && bytes % size === 0)
  return unit ? `${bytes / unit[1]} ${unit[0]} (${bytes} bytes)` : `${bytes} bytes`
}

/** Why `volume` (now `currentBytes`) cannot grow to `nextBytes`, or undefined when it can (equal: nothing to do). */
export const checkResize = (volume: string, currentBytes: number, nextBytes: number, reachBytes: number = volumeSizeBytesMax, unitBytes: number = sectorBytes): ReplicationError | undefined => {
  const maxBytes = Math.min(volumeSizeBytesMax, reachBytes)
  const whole = unitBytes === sectorBytes ? `${sectorBytes}-byte sectors` : `${unitBytes}-byte units (the volume is encrypted in units of ${unitBytes} bytes)`
  if (!Number.isSafeInteger(nextBytes) || nextBytes <= 0 || nextBytes % unitBytes !== 0)
    return new ReplicationError({ reason: "bad-size", volume, message: `volume ${volume}: size ${nextBytes} is not allowed: a whole number of ${whole}, from ${formatBytes(currentBytes)} (its size now) to ${formatBytes(maxBytes)}` })
  // An encrypted volume's partial last unit grown into a whole one would read its new bytes as
  // the decryption of zeros, not as zeros: such a volume does not grow online.
  if (currentBytes % unitBytes !== 0 && nextBytes !== currentBytes)
    return new ReplicationError({ reason: "bad-size", volume, message: `volume ${volume} is ${formatBytes(currentBytes)}, not a whole number of ${whole}: it cannot grow online; nothing was changed` })
  if (nextBytes < currentBytes)
    return new ReplicationError({ reason: "shrink", volume, message: `volume ${volume} is ${formatBytes(currentBytes)}; it cannot shrink to ${formatBytes(nextBytes)}: a volume only grows (allowed: ${formatBytes(currentBytes)} to ${formatBytes(maxBytes)}); nothing was changed` })
  if (nextBytes > maxBytes)
    return new ReplicationError({
      reason: "bad-size", volume,
      message: maxBytes < volumeSizeBytesMax
        ? `volume ${volume}: ${formatBytes(nextBytes)} is more than its master can grow it to online (${formatBytes(maxBytes)}: its dirty-region bitmaps keep their region size); grow it in steps, or let the master reopen first; nothing was changed`
        : `volume ${volume}: ${formatBytes(nextBytes)} is more than the largest volume (${formatBytes(volumeSizeBytesMax)}, volumeSizeBytesMax); nothing was changed`,
    })
  return undefined
}
