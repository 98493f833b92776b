/**
 * replivol quick start: three nodes in one process, one volume with two replicas.
 *
 *   node --import tsx examples/quickstart.ts      (or: bun examples/quickstart.ts)
 *
 * Writes 1 MiB, reads it back, flushes, and prints the volume's status. Uses only the public API.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createNode } from "../lib/index.ts"

const port = Number(process.env.REPLIVOL_PORT ?? 5703)
const dataDir = await mkdtemp(join(tmpdir(), "replivol-quickstart-"))
const secret = "quickstart-secret-please-change-me"

const nodes = await Promise.all(
  [1, 2, 3].map((i) => createNode({ name: `n${i}`, address: { host: `127.0.0.${i}`, port }, dataDir: join(dataDir, `n${i}`), secret })),
)
const [n1, n2, n3] = nodes as [typeof nodes[0], typeof nodes[0], typeof nodes[0]]
try {
  const sizeBytes = 64 * 1024 * 1024
  // Replicas are hosted first; the master then connects to them (the cluster layer automates this).
  await n2.hostReplica("default/demo", sizeBytes)
  await n3.hostReplica("default/demo", sizeBytes)
  const volume = await n1.openVolume({
    volume: "default/demo",
    sizeBytes,
    labels: { "storageos.com/replicas": "2" },
    replicas: [
      { node: n2.name, address: n2.address },
      { node: n3.name, address: n3.address },
    ],
  })

  const data = new TextEncoder().encode("hello, replicated world\n".repeat(43690))
  await volume.write(4096, data) // returns once the master and both replicas have it
  await volume.flush() // and once it is on every copy's disk
  const back = await volume.read(4096, data.length)
  const same = back.length === data.length && back.every((b, i) => b === data[i])
  const status = await volume.status()
  console.log(`wrote and read back ${data.length} bytes: ${same ? "identical" : "DIFFERENT"}`)
  console.log(`volume ${status.volume}: ${status.health} (${status.reason}); master ${status.master}, epoch ${status.epoch}`)
  for (const replica of status.replicas) console.log(`  replica on ${replica.node}: ${replica.state}`)

  try {
    await volume.write(sizeBytes - 10, new Uint8Array(100))
  } catch (error) {
    // Typed errors: match on _tag, never on the message.
    console.log(`writing past the end fails with ${(error as { _tag: string })._tag}: ${(error as Error).message}`)
  }
  if (!same) process.exitCode = 1
} finally {
  for (const node of nodes) await node.close()
  await rm(dataDir, { recursive: true, force: true })
}
