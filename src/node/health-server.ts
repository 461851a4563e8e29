/**
 * /healthz (alive, with the node's state as JSON) and /readyz (200 once the lease is held,
 * subnet.env written and the data plane running; 503 before and while stopping), and /metrics
 * (Prometheus text: the data plane's counters and the backend's, read at scrape time).
 */
import http from 'node:http';
import type client from 'prom-client';
import type { NodeStatus } from './node.js';

export interface HealthServer {
  address: { ip: string; port: number };
  close(): Promise<void>;
}

export function serveHealth(ip: string, port: number, status: () => NodeStatus, metrics?: client.Registry): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    if (metrics && (req.url ?? '/').split('?')[0] === '/metrics') {
      metrics.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${e.message}\n`),
      );
      return;
    }
    const m = process.memoryUsage();
    const s = { ...status(), process: { pid: process.pid, uptimeSeconds: Math.round(process.uptime()), rssBytes: m.rss, heapUsedBytes: m.heapUsed } };
    const path = (req.url ?? '/').split('?')[0];
    let code: number;
    if (path === '/healthz') code = s.state === 'failed' ? 503 : 200;
    else if (path === '/readyz') code = s.ready ? 200 : 503;
    else code = 404;
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(code === 404 ? '{"error":"not found"}\n' : `${JSON.stringify(s, null, 1)}\n`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => {
      const a = server.address() as { address: string; port: number };
      resolve({ address: { ip: a.address, port: a.port }, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}
