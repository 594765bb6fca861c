// Files the commands read and write. Outputs are written atomically (temp file + rename) so a crash never leaves a
// half-written file; a path that cannot be written is a UserError naming it. The check* functions look at the disk
// without changing it, so that a command refuses a bad output path before any work (docs/cli.md).
import { accessSync, constants, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UserError } from '../core/errors.ts';

/** Why a file-system call failed, in words (ENOENT → 'no such file', …). */
export function fsReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOTDIR':
    case 'EEXIST':
      return 'a part of the path is a file, not a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOSPC':
    case 'EDQUOT':
      return 'no space left on the device';
    default:
      return code ?? (e as Error).message;
  }
}

/** Error codes that say the path or the machine, not baffle, is at fault. */
const USER_CODES = new Set(['ENOENT', 'EISDIR', 'ENOTDIR', 'EEXIST', 'EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EDQUOT', 'ENAMETOOLONG', 'ELOOP']);

/**
 * Reads a file the user named: a UserError `<what> '<path>': <why>` when it is missing, a directory, behind a
 * regular file or unreadable.
 */
export function readUserFile(path: string, what: string): Buffer {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${what} '${path}' does not exist`);
    if (code === 'ENOTDIR') throw new UserError(`${what} '${path}' does not exist (${existingAncestor(path)} is a file, not a directory)`);
    throw new UserError(`${what} '${path}': ${fsReason(e)}`);
  }
  if (st.isDirectory()) throw new UserError(`${what} '${path}' is a directory, not a file`);
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UserError(`${what} '${path}': cannot read it (${fsReason(e)})`);
  }
}

/** The nearest ancestor of `path` (or `path` itself) that exists. */
function existingAncestor(path: string): string {
  let p = resolve(path);
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

function checkWritable(p: string, what: string): void {
  try {
    accessSync(p, constants.W_OK);
  } catch (e) {
    throw new UserError(`${what}: cannot write in ${p} (${fsReason(e)})`);
  }
}

/**
 * Checks that `dir` is, or can be created as, a writable directory, without creating anything. `what` names it in
 * the message, e.g. `--out runs/x`.
 */
export function checkOutputDir(dir: string, what: string): void {
  const a = existingAncestor(dir);
  if (a === resolve(dir)) {
    if (!statSync(a).isDirectory()) throw new UserError(`${what}: is a file, not a directory`);
  } else if (!statSync(a).isDirectory()) {
    throw new UserError(`${what}: cannot create the directory (${a} is a file, not a directory)`);
  }
  checkWritable(a, what);
}

/** Checks that `file` can be written (its directory exists or can be created; it is not a directory). */
export function checkOutputFile(file: string, what: string): void {
  if (existsSync(file) && statSync(file).isDirectory()) throw new UserError(`${what}: is a directory, not a file`);
  const a = existingAncestor(dirname(resolve(file)));
  if (!statSync(a).isDirectory()) throw new UserError(`${what}: cannot create it (${a} is a file, not a directory)`);
  checkWritable(a, what);
}

export function writeAtomic(path: string, data: string | Uint8Array, mode?: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(tmp, data, mode === undefined ? undefined : { mode });
    renameSync(tmp, path);
  } catch (e) {
    if (USER_CODES.has((e as NodeJS.ErrnoException).code ?? '')) throw new UserError(`cannot write ${path} (${fsReason(e)})`, { cause: e });
    throw e;
  }
}

export function writeJson(path: string, value: unknown): void {
  writeAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

export function writeJsonLines(path: string, records: readonly unknown[]): void {
  writeAtomic(path, records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : ''));
}
