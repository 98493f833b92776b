/** FUSE through `replivol cluster up`: dd into the mounted volume file, read it back, compare. */
import { suite } from "uvu"
import * as assert from "uvu/assert"
import { fuseUnavailableReason, sh } from "../fuse/support.ts"
import { eventually, startUp, type UpCluster } from "./support.ts"

const test = suite("replivol cluster up: FUSE smoke")
const reason = await fuseUnavailableReason()
let up: UpCluster | undefined

test.after(async () => {
  if (up) assert.is(await up.stop(), 0, "cluster up unmounts and exits 0 on SIGTERM")
})

test("dd 8 MiB into <mount>/default/smoke, read back with cmp; the mount is gone after stop", async () => {
  if (reason) {
    console.log(`  skipped: ${reason}`)
    return
  }
  up = await startUp({ hostBase: "127.0.6.", port: 26703, apiPort: 26705, extra: ["--nodes", "2"] })
  const created = await up.cli("volume", "create", "default/smoke", "--size", "16MiB", "--label", "storageos.com/replicas=1")
  assert.is(created.code, 0, created.stderr)
  const file = `${up.mount}/default/smoke`
  await eventually("the file appears", 10_000, async () => ((await sh(`test -f ${file}`)).code === 0 ? true : undefined))
  const source = `${up.mount}-src.bin`
  assert.is((await sh(`head -c 8388608 /dev/urandom > ${source}`)).code, 0)
  const dd = await sh(`dd if=${source} of=${file} bs=1M count=8 conv=fsync 2>&1`)
  assert.is(dd.code, 0, dd.stdout + dd.stderr)
  const cmp = await sh(`cmp -n 8388608 ${source} ${file}`)
  assert.is(cmp.code, 0, `read back differs: ${cmp.stdout}${cmp.stderr}`)
  const size = await sh(`stat -c %s ${file}`)
  assert.is(size.stdout.trim(), String(16 * 1024 * 1024))
  const mountDir = up.mount
  assert.is(await up.stop(), 0)
  up = undefined
  assert.is((await sh(`grep -c " ${mountDir} " /proc/mounts`)).stdout.trim(), "0", "unmounted")
  await sh(`rm -f ${source}`)
})

test.run()
