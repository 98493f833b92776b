/**
 * Masters served by cluster nodes of this process, by node identity (`name@host:port`). A volume
 * handle whose master runs in the same process (a local cluster, `cluster up`) calls it directly
 * instead of going through a socket to itself.
 */
import type { ReplivolNode } from "../node/node.ts"
import type { MasterVolume } from "../replication/masterVolume.ts"

const processMasters = new Map<string, ReplivolNode>()
const identity = (name: string, address: { readonly host: string; readonly port: number }) => `${name}@${address.host}:${address.port}`

/** Makes `node`'s masters callable in this process; returns the effect-free undo (for a finalizer). */
export const registerProcessNode = (name: string, node: ReplivolNode): (() => void) => {
  const key = identity(name, node.address)
  processMasters.set(key, node)
  return () => void (processMasters.get(key) === node && processMasters.delete(key))
}

export const inProcessMaster = (location: { readonly node: string; readonly address: { readonly host: string; readonly port: number } }, volume: string): MasterVolume | undefined => {
  const master = processMasters.get(identity(location.node, location.address))?.masters().get(volume)
  return master && !master.isFenced() ? master : undefined
}
