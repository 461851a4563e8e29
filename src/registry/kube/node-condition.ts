/** The NodeNetworkUnavailable condition as flanneld sets it once it is up. Pure. */

/**
 * flanneld's CompleteLease with --set-node-network-unavailable (default true): the
 * NetworkUnavailable condition set False, sent as a strategic-merge patch of nodes/NAME/status
 * (conditions merge by type). Times as Go's metav1.Time writes them: RFC 3339, seconds, UTC.
 */
export function networkAvailablePatchBody(now: Date) {
  const t = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    status: {
      conditions: [
        { type: 'NetworkUnavailable', status: 'False', lastHeartbeatTime: t, lastTransitionTime: t, reason: 'FlannelIsUp', message: 'Flannel is running on this node' },
      ],
    },
  };
}
