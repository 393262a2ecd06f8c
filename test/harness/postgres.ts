// Throwaway PostgreSQL cluster for tests: initdb into <repo>/.cache/pg-*, start it on a free
// 127.0.0.1 port, stop it and delete the directory afterwards.
//
// When the process runs as root, PostgreSQL refuses to run, so initdb/pg_ctl run as the
// `postgres` system user (runuser) and the cluster directory is chowned to it.
import { execFile, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import net from 'node:net'
import { promisify } from 'node:util'

const execFileP = promisify(execFile)

export interface PostgresHandle {
  /** postgresql://postgres@127.0.0.1:<port>/postgres (trust auth, no password) */
  url: string
  port: number
  /** cluster directory (data/, server.log, unix socket) */
  dir: string
  stop(): Promise<void>
}

const PG_USER = 'postgres'
const repoRoot = path.resolve(import.meta.dirname, '..', '..')

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

/** Newest /usr/lib/postgresql/<major>/bin, or PG_BIN_DIR. Throws when none has initdb. */
export function findPostgresBinDir(): string {
  const candidates: string[] = []
  if (process.env.PG_BIN_DIR) candidates.push(process.env.PG_BIN_DIR)
  const base = '/usr/lib/postgresql'
  if (fs.existsSync(base)) {
    const majors = fs
      .readdirSync(base)
      .filter((d) => /^\d+(\.\d+)?$/.test(d))
      .sort((a, b) => Number(b) - Number(a))
    for (const m of majors) candidates.push(path.join(base, m, 'bin'))
  }
  for (const dir of candidates) {
    if (fs.existsSync(path.join(dir, 'initdb')) && fs.existsSync(path.join(dir, 'pg_ctl'))) {
      return dir
    }
  }
  throw new Error(
    `PostgreSQL server binaries (initdb, pg_ctl) not found in ${candidates.join(', ') || base + '/<version>/bin'}. ` +
      'Install them (Debian/Ubuntu: apt-get install -y postgresql) or set PG_BIN_DIR.',
  )
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0
}

interface SystemUser {
  uid: number
  gid: number
}

function lookupUser(name: string): SystemUser {
  const res = spawnSync('id', ['-u', name], { encoding: 'utf8' })
  const gidRes = spawnSync('id', ['-g', name], { encoding: 'utf8' })
  if (res.status !== 0 || gidRes.status !== 0) {
    throw new Error(
      `running as root, but the '${name}' system user does not exist: PostgreSQL cannot run as root. ` +
        `Create it (useradd --system ${name}) or run the tests as a normal user.`,
    )
  }
  return { uid: Number(res.stdout.trim()), gid: Number(gidRes.stdout.trim()) }
}

/** [command, args] running `bin` as the postgres user when we are root. */
function asPgUser(bin: string, args: string[]): [string, string[]] {
  if (!isRoot()) return [bin, args]
  return ['runuser', ['-u', PG_USER, '--', bin, ...args]]
}

async function run(bin: string, args: string[], what: string): Promise<string> {
  const [cmd, argv] = asPgUser(bin, args)
  try {
    const { stdout, stderr } = await execFileP(cmd, argv, {
      env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
      maxBuffer: 16 * 1024 * 1024,
    })
    return stdout + stderr
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string }
    throw new Error(`${what} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, {
      cause: err,
    })
  }
}

function rmDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true })
}

export async function startPostgres(): Promise<PostgresHandle> {
  const binDir = findPostgresBinDir()
  const initdb = path.join(binDir, 'initdb')
  const pgCtl = path.join(binDir, 'pg_ctl')
  const owner = isRoot() ? lookupUser(PG_USER) : undefined

  const cacheDir = path.join(repoRoot, '.cache')
  fs.mkdirSync(cacheDir, { recursive: true })
  const dir = fs.mkdtempSync(path.join(cacheDir, 'pg-'))
  // unix sockets are limited to ~107 bytes: fall back to a short directory when needed
  let sockDir = dir
  let extraDir: string | undefined
  if (path.join(dir, '.s.PGSQL.65535.lock').length > 100) {
    extraDir = fs.mkdtempSync('/tmp/pg-')
    sockDir = extraDir
  }
  const dataDir = path.join(dir, 'data')
  const logFile = path.join(dir, 'server.log')
  if (owner) {
    for (const d of [dir, extraDir]) if (d) fs.chownSync(d, owner.uid, owner.gid)
  }
  fs.chmodSync(dir, 0o700)

  const cleanup = () => {
    rmDir(dir)
    if (extraDir) rmDir(extraDir)
  }

  try {
    await run(
      initdb,
      ['-D', dataDir, '-U', PG_USER, '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync'],
      'initdb',
    )
  } catch (err) {
    cleanup()
    throw err
  }

  let port = 0
  let started = false
  let lastErr: unknown
  for (let attempt = 0; attempt < 3 && !started; attempt++) {
    port = await freePort()
    const opts = [
      `-p ${port}`,
      `-c listen_addresses=127.0.0.1`,
      `-c unix_socket_directories='${sockDir}'`,
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      '-c max_connections=300',
    ].join(' ')
    try {
      await run(
        pgCtl,
        ['-D', dataDir, '-l', logFile, '-o', opts, '-w', '-t', '60', 'start'],
        'pg_ctl start',
      )
      started = true
    } catch (err) {
      lastErr = err
    }
  }
  if (!started) {
    const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''
    cleanup()
    throw new Error(`PostgreSQL did not start: ${String(lastErr)}\n${log}`)
  }

  const stopSync = () => {
    const [cmd, argv] = asPgUser(pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', 'stop'])
    spawnSync(cmd, argv, { stdio: 'ignore' })
    cleanup()
  }
  // last resort if the test process exits without calling stop()
  process.once('exit', stopSync)

  const url = `postgresql://${PG_USER}@127.0.0.1:${port}/postgres`
  await waitForTcp(binDir, port)

  let stopped = false
  return {
    url,
    port,
    dir,
    async stop() {
      if (stopped) return
      stopped = true
      process.removeListener('exit', stopSync)
      try {
        await run(pgCtl, ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', 'stop'], 'pg_ctl stop')
      } finally {
        cleanup()
      }
    },
  }
}

/** pg_ctl -w already waited on the socket; also check the TCP listener. */
async function waitForTcp(binDir: string, port: number): Promise<void> {
  const pgIsReady = path.join(binDir, 'pg_isready')
  const deadline = Date.now() + 30_000
  for (;;) {
    const res = spawnSync(pgIsReady, ['-h', '127.0.0.1', '-p', String(port), '-U', PG_USER], {
      stdio: 'ignore',
    })
    if (res.status === 0) return
    if (Date.now() > deadline) {
      throw new Error(`PostgreSQL on 127.0.0.1:${port} does not accept connections`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
}
