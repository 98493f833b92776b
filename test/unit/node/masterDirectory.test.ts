/**
 * A client's Open that arrives before the master of its epoch serves on that node waits for it
 * (bounded) instead of being refused; one this node can no longer serve is refused at once.
 */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { Effect, Fiber } from "effect"
import { makeMasterDirectory } from "../../../lib/node/masterDirectory.ts"
import type { MasterVolume } from "../../../lib/replication/masterVolume.ts"

const test = suite("master directory: a client waits for the master of its epoch")
const masterAt = (epoch: number) => ({ epoch }) as unknown as MasterVolume
const run = <A>(effect: Effect.Effect<A>) => Effect.runPromise(effect)

test("an Open that arrives before its master starts gets that master once it serves", async () => {
  const directory = makeMasterDirectory(5_000)
  const master = masterAt(3)
  const found = await run(Effect.gen(function* () {
    const waiting = yield* Effect.forkChild(directory.awaitMaster("ns/v", 3))
    yield* Effect.sleep(20)
    directory.add("ns/v", masterAt(2))()
    directory.add("ns/v", master)
    return yield* Fiber.join(waiting)
  }))
  assert.is(found, master)
})

test("an Open for an epoch already closed here, or older than the one serving, is refused at once", async () => {
  const directory = makeMasterDirectory(60_000)
  directory.add("ns/v", masterAt(4))()
  const startedMs = Date.now()
  assert.is(await run(directory.awaitMaster("ns/v", 4)), undefined)
  assert.is(await run(directory.awaitMaster("ns/v", 3)), undefined)
  directory.add("ns/v", masterAt(6))
  assert.is(await run(directory.awaitMaster("ns/v", 5)), undefined)
  assert.ok(Date.now() - startedMs < 30_000, "none of them waited for the bound")
})

test("a master that never starts here: the wait ends at its bound with no master", async () => {
  const directory = makeMasterDirectory(30)
  assert.is(await run(directory.awaitMaster("ns/other", 1)), undefined)
  directory.add("ns/v", masterAt(1))
  assert.is(await run(directory.awaitMaster("ns/v", 2)), undefined)
})

test.run()
