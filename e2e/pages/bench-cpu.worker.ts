/// <reference lib="webworker" />
import * as Comlink from 'comlink';
import * as bench from '../../tools/bench/cpu-browser.ts';

Comlink.expose({ ...bench });
