/// <reference lib="webworker" />
import * as Comlink from 'comlink';
import { browserCpuParity } from '../../tools/parity/cpu-browser.ts';

Comlink.expose({ run: browserCpuParity });
