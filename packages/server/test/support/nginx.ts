/**
 * Debian's nginx on loopback, as a platform would put it in front of its API: `auth_request` to
 * Fieldgate's /forward-auth, the caller's identity passed to the upstream in X-Fieldgate-* (and any the
 * client sent itself overwritten), the challenge passed back on a 401 or 403, and the API's RFC 9728
 * metadata served through it. The same configuration is in docs/gateways.md.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort } from './wait.js'

export const nginxPath = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p))

/** A reason to skip when nginx is not installed. */
export const nginxSkip: string | undefined = nginxPath ? undefined : 'nginx is not installed (apt-get install nginx; .ci/run does it)'

/** The server block of docs/gateways.md, with this run's ports. */
export function nginxSite(o: { port: number; fieldgate: string; upstream: string }): string {
  return `
  upstream fieldgate { server ${o.fieldgate}; keepalive 16; }

  server {
    listen 127.0.0.1:${o.port};

    # The check: a subrequest to Fieldgate with the original request's method, URI and host.
    location = /_fieldgate {
      internal;
      proxy_pass http://fieldgate/forward-auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Forwarded-Method $request_method;
      proxy_set_header X-Forwarded-Uri $request_uri;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }

    # RFC 9728: the API's metadata, which every challenge names, is Fieldgate's to answer.
    location = /.well-known/oauth-protected-resource {
      proxy_pass http://fieldgate;
      proxy_set_header X-Forwarded-Host $http_host;
    }

    location / {
      auth_request /_fieldgate;
      auth_request_set $fg_tenant $upstream_http_x_fieldgate_tenant_id;
      auth_request_set $fg_client $upstream_http_x_fieldgate_client_id;
      auth_request_set $fg_scope $upstream_http_x_fieldgate_scope;
      auth_request_set $fg_subject $upstream_http_x_fieldgate_subject;
      auth_request_set $fg_grant $upstream_http_x_fieldgate_grant_id;
      auth_request_set $fg_challenge $upstream_http_www_authenticate;
      # Set from the check only: a client's own X-Fieldgate-* never reaches the API.
      proxy_set_header X-Fieldgate-Tenant-Id $fg_tenant;
      proxy_set_header X-Fieldgate-Client-Id $fg_client;
      proxy_set_header X-Fieldgate-Scope $fg_scope;
      proxy_set_header X-Fieldgate-Subject $fg_subject;
      proxy_set_header X-Fieldgate-Grant-Id $fg_grant;
      # nginx passes the challenge of a 401 on by itself; a 403's (insufficient_scope) it is given here.
      error_page 403 = @fieldgate_forbidden;
      proxy_pass http://${o.upstream};
    }

    location @fieldgate_forbidden {
      add_header WWW-Authenticate $fg_challenge always;
      return 403;
    }
  }
`
}

export interface Nginx {
  origin: string
  stop(): Promise<void>
}

/**
 * nginx in the foreground with its own prefix, config, logs and temp paths under `dir`. `wrap` runs it
 * through a command first (a benchmark's `taskset -c 0`), which its workers inherit.
 */
export async function startNginx(dir: string, site: (port: number) => string, wrap: readonly string[] = []): Promise<Nginx> {
  if (!nginxPath) throw new Error(nginxSkip)
  mkdirSync(join(dir, 'logs'), { recursive: true })
  const port = await freePort()
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(dir, t)};`).join('\n')
  const conf = `${process.getuid?.() === 0 ? 'user root;\n' : ''}worker_processes 1;
error_log ${join(dir, 'logs', 'error.log')} warn;
pid ${join(dir, 'nginx.pid')};
events { worker_connections 512; }
http {
  access_log off;
${temp}
${site(port)}
}
`
  const file = join(dir, 'nginx.conf')
  writeFileSync(file, conf)
  const test = spawnSync(nginxPath, ['-t', '-p', dir, '-c', file], { encoding: 'utf8' })
  if (test.status !== 0) throw new Error(`nginx -t refused the configuration: ${test.stderr}`)
  const args = ['-p', dir, '-c', file, '-g', 'daemon off;']
  const child: ChildProcess = wrap.length
    ? spawn(wrap[0]!, [...wrap.slice(1), nginxPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(nginxPath, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  const origin = `http://127.0.0.1:${port}`
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}${readLog(dir)}`)
    try {
      await fetch(`${origin}/.well-known/oauth-protected-resource`)
      break
    } catch {
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  return {
    origin,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGQUIT')
      }),
  }
}

const readLog = (dir: string): string => {
  const log = join(dir, 'logs', 'error.log')
  return existsSync(log) ? readFileSync(log, 'utf8') : ''
}
