// Validates ServiceMonitor manifests against the monitoring.coreos.com/v1
// schema shipped by @kubernetes-models/prometheus-operator.
import fs from 'node:fs';
import { loadAll } from 'js-yaml';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';

let failed = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of loadAll(fs.readFileSync(file, 'utf8'))) {
    if (!doc) continue;
    try {
      new ServiceMonitor(doc).validate();
      console.log(`${file}: ${doc.kind}/${doc.metadata.name} valid`);
    } catch (e) {
      failed++;
      console.log(`${file}: ${doc.kind}/${doc.metadata?.name} INVALID: ${e.message}`);
    }
  }
}
process.exit(failed ? 1 : 0);
