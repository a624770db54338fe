// The upload page's script: no framework, no build step. Talks to the JSON API of this gateway
// (POST /v1/models/{model}/segment with Accept: application/json and ?format=color) and lays the
// colour mask over the photo.
'use strict';

const MAX_BYTES = 32 * 1024 * 1024;
const $ = (id) => document.getElementById(id);

const MESSAGES = {
  TOO_LARGE: 'This image is too large. Use a file under 32 MiB (and at most about 24 megapixels).',
  UNSUPPORTED_MEDIA_TYPE: 'This file is not an image segserve can read. Use a JPEG, PNG or WebP image.',
  INVALID_INPUT: 'This file could not be read as an image (it may be damaged or cut short).',
  OVERLOADED: 'The service is busy right now. Try again in a few seconds.',
  UNAVAILABLE: 'The model is not available right now. Try again in a few seconds.',
  DEADLINE: 'The model took too long to answer. Try again, or use a smaller image.',
  UNAUTHENTICATED: 'This gateway needs an API key: enter it under “API key” and try again.',
  MODEL_NOT_FOUND: 'This model is not served here.',
  INTERNAL: 'Something went wrong on the server.',
};

const state = { photoUrl: null };

function showError(code, detail) {
  const el = $('error');
  const text = MESSAGES[code] || 'The request failed.';
  el.textContent = detail && code !== 'INTERNAL' ? `${text} (${detail})` : text;
  el.dataset.code = code || '';
  el.hidden = false;
  if (code === 'UNAUTHENTICATED') {
    $('key-box').open = true;
    $('api-key').focus();
  }
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

function authHeaders() {
  const key = $('api-key').value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function loadModels() {
  const select = $('model');
  try {
    const res = await fetch('/v1/models', { headers: { Accept: 'application/json', ...authHeaders() } });
    const body = await res.json();
    if (!res.ok) throw Object.assign(new Error(body.error?.message || res.statusText), { code: body.error?.code });
    select.replaceChildren(
      ...body.models.map((m) => {
        const option = document.createElement('option');
        option.value = m.name;
        const v = m.stable?.version ? ` (v${m.stable.version}${m.canary ? `, canary v${m.canary.version || '?'} ${m.canary.weight}%` : ''})` : '';
        option.textContent = m.name + v;
        return option;
      }),
    );
    if (body.models.length === 0) select.replaceChildren(new Option('no model is served', ''));
  } catch (err) {
    select.replaceChildren(new Option('models unavailable', ''));
    if (err.code === 'UNAUTHENTICATED') showError('UNAUTHENTICATED');
  }
}

function fmtMs(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

function render(result, elapsedMs) {
  $('overlay').src = `data:image/png;base64,${result.mask}`;
  $('served-model').textContent = result.model;
  $('version').textContent = result.track === 'canary' ? `${result.version} (canary)` : result.version;
  $('size').textContent = `${result.width} × ${result.height}`;
  const infer = result.timings?.inference?.total_ms;
  $('timing').textContent = `${fmtMs(elapsedMs)} in total` + (typeof infer === 'number' ? `, model ${fmtMs(infer)}` : '');

  const rows = result.classes.map((c) => {
    const tr = document.createElement('tr');
    tr.dataset.class = c.name;
    const name = document.createElement('td');
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = c.index === 0 ? 'transparent' : c.color;
    name.append(swatch, c.name);
    const share = document.createElement('td');
    share.className = 'share';
    share.textContent = `${(c.fraction * 100).toFixed(1)} %`;
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.style.width = `${Math.max(c.fraction * 100, 0.5)}%`;
    bar.style.background = c.index === 0 ? 'var(--line)' : c.color;
    share.append(bar);
    const pixels = document.createElement('td');
    pixels.className = 'pixels';
    pixels.textContent = c.pixels.toLocaleString('en');
    tr.append(name, share, pixels);
    return tr;
  });
  $('stats').tBodies[0].replaceChildren(...rows);
  $('result').hidden = false;
}

async function segment(file) {
  clearError();
  if (!file) return;
  if (file.size > MAX_BYTES) {
    showError('TOO_LARGE', `${(file.size / 1048576).toFixed(1)} MiB`);
    return;
  }
  const model = $('model').value;
  if (!model) {
    showError('UNAVAILABLE', 'no model to choose');
    return;
  }
  if (state.photoUrl) URL.revokeObjectURL(state.photoUrl);
  state.photoUrl = URL.createObjectURL(file);

  const form = new FormData();
  form.append('image', file, file.name);
  $('busy').hidden = false;
  $('result').setAttribute('aria-busy', 'true');
  const started = performance.now();
  try {
    const res = await fetch(`/v1/models/${encodeURIComponent(model)}/segment?format=color`, {
      method: 'POST',
      body: form,
      headers: { Accept: 'application/json', ...authHeaders() },
    });
    let body;
    try {
      body = await res.json();
    } catch {
      body = undefined;
    }
    if (!res.ok) {
      showError(body?.error?.code || (res.status === 413 ? 'TOO_LARGE' : 'INTERNAL'), body?.error?.message);
      $('result').hidden = true;
      return;
    }
    $('photo').src = state.photoUrl;
    render(body, performance.now() - started);
  } catch (err) {
    showError('UNAVAILABLE', err.message);
  } finally {
    $('busy').hidden = true;
    $('result').removeAttribute('aria-busy');
  }
}

function init() {
  const drop = $('drop');
  const input = $('file');
  input.addEventListener('change', () => {
    void segment(input.files[0]);
    input.value = '';
  });
  drop.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      input.click();
    }
  });
  for (const type of ['dragenter', 'dragover']) {
    drop.addEventListener(type, (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
  }
  for (const type of ['dragleave', 'drop']) drop.addEventListener(type, () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    void segment(e.dataTransfer.files[0]);
  });
  // Dropping next to the zone must not navigate away from the page.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());

  const opacity = $('opacity');
  const applyOpacity = () => {
    $('overlay').style.opacity = String(opacity.value / 100);
    $('opacity-value').textContent = `${opacity.value}%`;
  };
  opacity.addEventListener('input', applyOpacity);
  applyOpacity();
  $('api-key').addEventListener('change', () => void loadModels());
  void loadModels();
}

document.addEventListener('DOMContentLoaded', init);
