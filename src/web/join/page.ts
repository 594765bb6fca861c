// The join page: the person's choices (client id, token, files) checked here, the federated client run in a
// worker, and what happens shown in stable elements (#state, #round, #result, #passes, #bytes-up, …).
import { bytes } from '../../core/format.ts';
import { DataError } from '../../core/data/errors.ts';
import { readPicked } from '../data.ts';
import { parseFromWorker, type FromWorker } from '../messages.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const clientInput = $<HTMLInputElement>('client');
const tokenInput = $<HTMLInputElement>('token');
const dataInput = $<HTMLInputElement>('data');
const folderInput = $<HTMLInputElement>('folder');
const joinButton = $<HTMLButtonElement>('join');
const stateBox = $<HTMLDivElement>('state');
const detailBox = $<HTMLDivElement>('detail');

type State = 'idle' | 'checking' | 'connecting' | 'connected' | 'training' | 'done' | 'refused' | 'error';

/**
 * `#state` says the state in one word for automation — `waiting`, `training`, `done`, or `error: <why>` — with
 * the finer state in its `data-state`; `#detail` says it in a sentence.
 */
function show(state: State, text: string): void {
  stateBox.dataset.state = state;
  const word = state === 'training' || state === 'done' ? state : state === 'error' || state === 'refused' ? `error: ${text}` : 'waiting';
  stateBox.textContent = word;
  detailBox.textContent = state === 'error' || state === 'refused' ? '' : text;
}


// Credentials in the fragment (#client=ID&token=T) fill the form; the fragment is never sent to the server.
const fragment = new URLSearchParams(location.hash.slice(1));
if (fragment.has('client')) clientInput.value = fragment.get('client')!;
if (fragment.has('token')) tokenInput.value = fragment.get('token')!;

// Two IDX files or a folder: picking one clears the other, so that what trains is what was picked last.
dataInput.addEventListener('change', () => {
  if (dataInput.files?.length) folderInput.value = '';
});
folderInput.addEventListener('change', () => {
  if (folderInput.files?.length) dataInput.value = '';
});

let worker: Worker | null = null;

/** The client is over (finished, refused or failed): no worker keeps running behind the page; Join again is possible. */
function stopWorker(): void {
  worker?.terminate();
  worker = null;
  joinButton.disabled = false;
}

function onWorker(m: FromWorker): void {
  switch (m.type) {
    case 'backend':
      $('backend').textContent = `onnxruntime-web ${m.backend}, ${m.threads} thread${m.threads > 1 ? 's' : ''}${self.crossOriginIsolated ? '' : ' (page not cross-origin isolated)'}`;
      return;
    case 'stats': {
      const s = m.stats;
      $('passes').textContent = s.busyMs > 0 ? (s.forwardPasses / (s.busyMs / 1000)).toFixed(1) : '—';
      $('bytes-down').textContent = bytes(s.bytesIn);
      $('bytes-up').textContent = bytes(s.bytesOut);
      if (s.lastRound !== null) $('round').textContent = String(s.lastRound + 1);
      if (s.lastLoss !== null) $('result').textContent = s.lastLoss.toFixed(4);
      return;
    }
    case 'error':
      show('error', m.message);
      stopWorker();
      return;
    case 'event': {
      const e = m.event;
      if (e.kind === 'connecting') show('connecting', e.attempt === 1 ? 'Connecting…' : `Connecting (attempt ${e.attempt})…`);
      else if (e.kind === 'connected') show('connected', `Connected (run ${e.runId}); waiting for a task.`);
      else if (e.kind === 'result') show('training', `Training: sent the result of round ${e.round + 1}.`);
      else if (e.kind === 'disconnected') show('connecting', `Disconnected: ${e.reason}. Reconnecting in ${(e.retryInMs / 1000).toFixed(1)} s.`);
      else if (e.kind === 'refused-frame') show('training', `The server refused a frame: ${e.message}`);
      else if (e.kind === 'finished') {
        if (e.outcome === 'done') show('done', 'Training finished. Thank you: the server has the model.');
        else if (e.outcome === 'refused') show('refused', `Refused: ${e.reason ?? 'no reason given'}`);
        else show('error', `Stopped: ${e.reason ?? e.outcome}`);
        stopWorker();
      }
      return;
    }
  }
}

async function join(): Promise<void> {
  // WebCrypto (the client's proof of its token) exists only in a secure context: https://, or localhost.
  if (!self.isSecureContext || !self.crypto?.subtle) {
    show('error', `This page needs https:// (or localhost) to prove your token: serve it with --tls-cert/--tls-key and open https://${location.host}/join.`);
    return;
  }
  const id = Number(clientInput.value);
  if (clientInput.value.trim() === '' || !Number.isSafeInteger(id) || id < 0) {
    show('error', 'Client id: give the non-negative integer your tokens file lists for you.');
    return;
  }
  const token = tokenInput.value.trim();
  if (token === '') {
    show('error', 'Token: give the token of your client id (from the tokens file `baffle tokens` made).');
    return;
  }
  const picked = [...(dataInput.files ?? []), ...(folderInput.files ?? [])];
  joinButton.disabled = true;
  show('checking', 'Checking the files…');
  let data;
  try {
    data = await readPicked(picked);
  } catch (e) {
    show('error', e instanceof DataError ? e.message : `Cannot read the files: ${(e as Error).message}`);
    joinButton.disabled = false;
    return;
  }
  const count = data.kind === 'idx' ? data.images.count : data.files.length;
  show('connecting', `${count} examples read. Connecting…`);
  worker = new Worker('/join/worker.js', { type: 'module' });
  worker.onmessage = (e) => {
    try {
      onWorker(parseFromWorker(e.data));
    } catch (err) {
      show('error', (err as Error).message);
    }
  };
  worker.onerror = (e) => {
    show('error', `The client stopped: ${e.message}`);
    stopWorker();
  };
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
  worker.postMessage({ type: 'start', url, clientId: id, token, data });
}

joinButton.addEventListener('click', () => void join());
