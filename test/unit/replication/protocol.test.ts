/** OpenAck bodies: the replica's process incarnation is carried when told, refused when malformed, absent from older replicas. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { decodeOpenReply } from "../../../lib/replication/protocol.ts"
import { encodeJsonBody } from "../../../lib/wire/body.ts"

const test = suite("open reply")
const identity = { uid: "u1", epoch: 3, generation: "3-a-b", state: "complete" }

test("an OpenAck tells the replica's incarnation; one from an older replica has none", () => {
  const told = decodeOpenReply(encodeJsonBody({ epoch: 3, fresh: false, activity: [], identity, incarnation: 42 }))
  assert.ok(typeof told !== "string" && told.incarnation === 42)
  const older = decodeOpenReply(encodeJsonBody({ epoch: 3, fresh: false, activity: [], identity }))
  assert.ok(typeof older !== "string" && older.incarnation === undefined)
})

test("a malformed incarnation is refused, not taken for a process", () => {
  for (const incarnation of ["42", -1, 1.5, null]) {
    assert.type(decodeOpenReply(encodeJsonBody({ epoch: 3, fresh: false, activity: [], identity, incarnation })), "string", `incarnation ${JSON.stringify(incarnation)}`)
  }
})

test.run()
