/**
 * Our subnet moving while we run. flanneld exits when its lease is revoked; tulle takes a new
 * subnet and keeps forwarding, but pods on the bridge still hold addresses of the old one, so
 * the node says so (state `subnet-moved`, /healthz `subnetMoved`, the metrics below) until it
 * is restarted.
 */
import type { Logger } from 'pino';
import client from 'prom-client';
import type { Clock } from '../util/clock.js';
import type { SubnetMove } from './node-types.js';

export class SubnetMoves {
  /** the move since start (from: the subnet we started with), if any */
  moved: SubnetMove | undefined;
  /** how many times the subnet moved */
  count = 0;

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** Records a move from `last` (our subnet until now) to `to`, and says what the operator must do. */
  record(last: string | undefined, to: string): SubnetMove {
    const from = this.moved?.from ?? last;
    this.moved = {
      from: from ?? '(unknown)', to, at: this.clock.now(),
      action: `pods with addresses in ${from} (made from the old subnet.env) cannot be reached any more: recreate them so they get addresses in ${to}, then restart tulle to clear this state`,
    };
    this.count++;
    this.log.error({ from, to, action: this.moved.action }, `our subnet moved from ${from} to ${to} while running: pods on ${from} must be recreated (not ready until restart)`);
    return this.moved;
  }

  registerMetrics(registry: client.Registry): void {
    const moved = () => this.moved !== undefined;
    const count = () => this.count;
    new client.Gauge({
      name: 'tulle_subnet_moved', registers: [registry],
      help: "1 while this node's subnet has moved since start: pods on the old subnet must be recreated (see /healthz subnetMoved)",
      collect() {
        this.set(moved() ? 1 : 0);
      },
    });
    new client.Counter({
      name: 'tulle_subnet_moves_total', registers: [registry], help: "times this node's subnet moved while running",
      collect() {
        this.reset();
        this.inc(count());
      },
    });
  }
}
