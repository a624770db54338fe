// Placeholder until the object-store backend lands (issue 2, step 8).
import { ModelLoadError, type ModelArtifact } from '../domain/model.js';
import type { Logger } from './logger.js';
import type { ModelStore } from '../ports.js';

export class NatsModelStore implements ModelStore {
  readonly location: string;

  constructor(options: { url: string; name: string; version: string; sha256: string | undefined; cacheDir: string; logger: Logger }) {
    this.location = `${options.url} segserve_models/${options.name}/${options.version}`;
  }

  load(): Promise<ModelArtifact> {
    return Promise.reject(new ModelLoadError('missing', 'the NATS object store is not supported yet'));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
