/**
 * The names of flanneld's node annotations under `--kube-annotation-prefix` (default
 * flannel.alpha.coreos.com), made from the prefix as flanneld's pkg/subnet/kube/annotations.go
 * makes them: at most one slash; no slash → "<prefix>/"; a prefix with a slash that ends in
 * neither "/" nor "-" gets "-"; the result must look like fqdn/[a-z0-9_-]*. Pure.
 */
import { ConfigError } from '../../util/errors.js';

export const DEFAULT_ANNOTATION_PREFIX = 'flannel.alpha.coreos.com';

export interface AnnotationNames {
  /** "true" on a node whose lease flannel (or tulle) manages: peers only count such nodes */
  readonly kubeSubnetManager: string;
  readonly backendData: string;
  readonly backendV6Data: string;
  readonly backendType: string;
  readonly publicIp: string;
  readonly publicIpv6: string;
  /** set by a person: read at start as --public-ip (flanneld's GetStoredPublicIP) */
  readonly nodePublicIp: string;
  readonly nodePublicIpv6: string;
  /** set by a person: the public-ip written for this node instead of its own address */
  readonly publicIpOverwrite: string;
  readonly publicIpv6Overwrite: string;
}

const FORMAT = /(?:[a-z0-9_-]+\.)+[a-z0-9_-]+\/(?:[a-z0-9_-]+-)?$/;

/** Throws a ConfigError naming `field` with flanneld's own wording when the prefix is not usable. */
export function annotationNames(prefix: string, field = '--kube-annotation-prefix'): AnnotationNames {
  const slashes = prefix.split('/').length - 1;
  if (slashes > 1) throw new ConfigError(field, `"${prefix}": prefix can contain at most single slash`);
  let p = slashes === 0 ? `${prefix}/` : prefix;
  if (!p.endsWith('/') && !p.endsWith('-')) p += '-';
  // (flanneld's regexp is unanchored at the start, as here)
  if (!FORMAT.test(p)) throw new ConfigError(field, `"${prefix}": prefix must be in a format: fqdn/[0-9a-z-_]*`);
  return Object.freeze({
    kubeSubnetManager: `${p}kube-subnet-manager`,
    backendData: `${p}backend-data`,
    backendV6Data: `${p}backend-v6-data`,
    backendType: `${p}backend-type`,
    publicIp: `${p}public-ip`,
    publicIpv6: `${p}public-ipv6`,
    nodePublicIp: `${p}node-public-ip`,
    nodePublicIpv6: `${p}node-public-ipv6`,
    publicIpOverwrite: `${p}public-ip-overwrite`,
    publicIpv6Overwrite: `${p}public-ipv6-overwrite`,
  });
}
