// Test harness: a real redis-server and the built service binary, each on
// a free loopback port, stopped by the process handle that started them.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The service binary: CACHE_SERVICE_BIN, or bin/cache-service at the repository root (`make build`). */
export const binary = resolve(process.env.CACHE_SERVICE_BIN ?? join(import.meta.dirname ?? '.', '../../../../bin/cache-service'));

/** A free TCP port on 127.0.0.1 (free when asked; the caller binds it at once). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? res(addr.port) : rej(new Error('no port'))));
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    child.once('exit', () => res());
    child.kill('SIGKILL');
  });
}

async function until(what: string, ms: number, ok: () => Promise<boolean> | boolean, output?: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await ok()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms${output ? '\n' + output() : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface Redis {
  port: number;
  /** Sends one command over a connection of its own and returns the raw RESP reply. */
  command(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/** Starts redis-server on a free loopback port, with no persistence. */
export async function startRedis(): Promise<Redis> {
  for (let tries = 0; ; tries++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'cache-client-redis-'));
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout?.on('data', (b) => (out += b));
    child.stderr?.on('data', (b) => (out += b));
    const redis: Redis = {
      port,
      command: (...args) => respCommand(port, args),
      stop: async () => {
        await stop(child);
        rmSync(dir, { recursive: true, force: true });
      },
    };
    try {
      await until('redis-server answers PING', 5000, async () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited: ${out}`);
        return (await respCommand(port, ['PING']).catch(() => '')) === '+PONG\r\n';
      });
      return redis;
    } catch (err) {
      await redis.stop();
      if (tries >= 3) throw err; // the port was taken between the check and the bind, three times
    }
  }
}

function respCommand(port: number, args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    sock.setTimeout(2000, () => sock.destroy(new Error('redis command timed out')));
    sock.on('error', rej);
    sock.on('data', (b) => {
      reply += b;
      if (reply.endsWith('\r\n')) {
        sock.end();
        res(reply);
      }
    });
    sock.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''));
  });
}

export interface Service {
  url: string;
  /** The GraphQL endpoint. */
  endpoint: string;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Runs the built binary with env (and nothing else of this process's
 * environment but PATH and HOME) in an empty directory, so no .env is
 * read; PORT is 0 unless env sets it. Resolves once it listens and, when
 * redis is given, once it reports Redis connected.
 */
export async function startService(env: Record<string, string>, redis?: Redis): Promise<Service> {
  const dir = mkdtempSync(join(tmpdir(), 'cache-client-service-'));
  const full: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', ...env };
  if (redis) {
    full.REDIS_HOST = '127.0.0.1';
    full.REDIS_PORT = String(redis.port);
  }
  const child = spawn(binary, [], { cwd: dir, env: full, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (b) => (out += b));
  child.stderr?.on('data', (b) => (out += b));
  const spawned = new Promise<void>((res, rej) => {
    child.once('spawn', res);
    child.once('error', (err) => rej(new Error(`start ${binary} (run make build, or set CACHE_SERVICE_BIN): ${err.message}`)));
  });
  const svc: Service = {
    url: '',
    endpoint: '',
    output: () => out,
    stop: async () => {
      await stop(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await spawned;
    await until('the service listens', 10_000, () => {
      if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode}:\n${out}`);
      const m = /msg=listening addr=\S*:(\d+)|"msg":"listening","addr":"[^"]*:(\d+)"/.exec(out);
      if (m) svc.url = `http://127.0.0.1:${m[1] ?? m[2]}`;
      return m !== null;
    }, () => out);
    svc.endpoint = svc.url + '/graphql';
    if (redis) {
      await until('the service reports Redis connected', 10_000, async () => {
        const res = await fetch(svc.url + '/health/redis', { headers: env.API_TOKENS ? { authorization: `Bearer ${anyToken(env.API_TOKENS)}` } : {} }).catch(() => null);
        const body = res ? await res.json().catch(() => null) : null;
        return body?.data?.status === 'connected';
      }, () => out);
    }
    return svc;
  } catch (err) {
    await svc.stop();
    throw err;
  }
}

function anyToken(tokens: string): string {
  return tokens.split(',')[0]?.split(':')[2] ?? '';
}
