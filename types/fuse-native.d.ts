/**
 * Minimal typings for fuse-native 2.2.6 (it ships no .d.ts). Signatures checked against its index.js.
 * Only fuse/mount.ts loads fuse-native, and only with a dynamic import after the runtime check
 * (Bun and Deno crash inside it).
 */
declare module "fuse-native" {
  export type Cb = (code: number) => void
  export type CbV<T> = (code: number, value?: T) => void
  export interface Stat { mode: number; size: number; uid?: number; gid?: number; nlink?: number; ino?: number; dev?: number; rdev?: number; blksize?: number; blocks?: number; atime?: Date | number; mtime?: Date | number; ctime?: Date | number }
  export interface Statfs { bsize: number; frsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number; favail: number; fsid: number; flag: number; namemax: number }
  export interface Ops {
    init?(cb: Cb): void
    error?(cb: Cb): void
    access?(path: string, mode: number, cb: Cb): void
    statfs?(path: string, cb: CbV<Statfs>): void
    getattr?(path: string, cb: CbV<Stat>): void
    fgetattr?(path: string, fd: number, cb: CbV<Stat>): void
    flush?(path: string, fd: number, cb: Cb): void
    fsync?(path: string, datasync: number, fd: number, cb: Cb): void      // NB: README says (path, fd, datasync)
    fsyncdir?(path: string, datasync: number, fd: number, cb: Cb): void
    readdir?(path: string, cb: (code: number, names?: string[], stats?: Stat[]) => void): void
    truncate?(path: string, size: number, cb: Cb): void
    ftruncate?(path: string, fd: number, size: number, cb: Cb): void
    utimens?(path: string, atime: number, mtime: number, cb: Cb): void
    readlink?(path: string, cb: CbV<string>): void
    chown?(path: string, uid: number, gid: number, cb: Cb): void
    chmod?(path: string, mode: number, cb: Cb): void
    mknod?(path: string, mode: number, dev: number, cb: Cb): void
    setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Cb): void
    getxattr?(path: string, name: string, position: number, cb: CbV<Buffer>): void
    listxattr?(path: string, cb: CbV<string[]>): void
    removexattr?(path: string, name: string, cb: Cb): void
    open?(path: string, flags: number, cb: CbV<number>): void
    opendir?(path: string, flags: number, cb: CbV<number>): void
    read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb): void   // cb(bytesRead | -errno)
    write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb): void  // cb(bytesWritten | -errno)
    release?(path: string, fd: number, cb: Cb): void
    releasedir?(path: string, fd: number, cb: Cb): void
    create?(path: string, mode: number, cb: CbV<number>): void
    unlink?(path: string, cb: Cb): void
    rename?(src: string, dest: string, cb: Cb): void
    link?(src: string, dest: string, cb: Cb): void
    symlink?(src: string, dest: string, cb: Cb): void
    mkdir?(path: string, mode: number, cb: Cb): void
    rmdir?(path: string, cb: Cb): void
  }
  export interface Options {
    debug?: boolean; force?: boolean; mkdir?: boolean; displayFolder?: string; name?: string
    timeout?: number | false | ({ default?: number } & Partial<Record<keyof Ops, number | false>>)
    allowOther?: boolean; allowRoot?: boolean; autoUnmount?: boolean; defaultPermissions?: boolean
    blkdev?: boolean; blksize?: number; maxRead?: number; fd?: number; userId?: number
    fsname?: string; subtype?: string; kernelCache?: boolean; autoCache?: boolean; umask?: number
    uid?: number; gid?: number; entryTimeout?: number; attrTimeout?: number; acAttrTimeout?: number
    noforget?: boolean; remember?: number; modules?: string
  }
  class Fuse {
    constructor(mnt: string, ops: Ops, opts?: Options)
    readonly mnt: string
    /** The `-o…` string given to libfuse; subclasses append options fuse-native does not expose (big_writes, direct_io). */
    protected _fuseOptions(): string
    mount(cb: (err: Error | null) => void): void
    unmount(cb: (err: Error | null) => void): void
    errno(code: string): number
    static unmount(mnt: string, cb: (err: Error | null) => void): void
    static isConfigured(cb: (err: Error | null, configured: boolean) => void): void
    static configure(cb: (err: Error | null) => void): void
    static unconfigure(cb: (err: Error | null) => void): void
    static readonly EPERM: number; static readonly ENOENT: number; static readonly EIO: number; static readonly EBADF: number
    static readonly EAGAIN: number; static readonly ENOMEM: number; static readonly EACCES: number; static readonly EBUSY: number
    static readonly EEXIST: number; static readonly ENOTDIR: number; static readonly EISDIR: number; static readonly EINVAL: number
    static readonly ENOSPC: number; static readonly EROFS: number; static readonly ENOSYS: number; static readonly ENOTEMPTY: number
    static readonly ETIMEDOUT: number; static readonly ENXIO: number; static readonly EINTR: number; static readonly EFBIG: number
  }
  export default Fuse   // (`export =` trips TS1203 in a "type":"module" package when lib checking is on)
}
