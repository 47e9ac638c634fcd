// The page of tfcat serve: sends the image a person drops or picks to the
// server's own :classify-image endpoint and shows the answer. It builds
// every element with textContent: names from the model are never HTML.
'use strict';
(function () {
  const app = document.getElementById('app');
  const endpoint = app.dataset.endpoint;
  const file = document.getElementById('file');
  const drop = document.getElementById('drop');
  const output = document.getElementById('output');
  const preview = document.getElementById('preview');
  const status = document.getElementById('status');
  const result = document.getElementById('result');
  let previewURL = null;

  function pct(p) { return (100 * p).toFixed(p >= 0.9995 || p < 0.0005 ? 0 : 1) + '%'; }

  function fail(message) {
    status.textContent = message;
    status.className = 'error';
    result.hidden = true;
  }

  function show(answer) {
    status.textContent = '';
    status.className = '';
    document.getElementById('class').textContent = answer['class'];
    document.getElementById('confidence').textContent = pct(answer.probabilities[answer['class']]);
    const list = document.getElementById('probabilities');
    list.replaceChildren();
    const entries = Object.entries(answer.probabilities).sort((a, b) => b[1] - a[1]);
    for (const [name, p] of entries) {
      const li = document.createElement('li');
      if (name === answer['class']) li.className = 'top';
      const label = document.createElement('span');
      label.className = 'label';
      label.textContent = name;
      const track = document.createElement('span');
      track.className = 'track';
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = (100 * p).toFixed(2) + '%';
      track.append(bar);
      const value = document.createElement('span');
      value.className = 'value';
      value.textContent = pct(p);
      li.append(label, track, value);
      list.append(li);
    }
    result.hidden = false;
  }

  async function classify(f) {
    if (!f) return;
    output.hidden = false;
    if (previewURL) URL.revokeObjectURL(previewURL);
    previewURL = URL.createObjectURL(f);
    preview.src = previewURL;
    result.hidden = true;
    status.className = 'busy';
    status.textContent = 'Classifying ' + f.name + '…';
    let reply, text;
    try {
      reply = await fetch(endpoint, { method: 'POST', body: f, headers: { 'Content-Type': 'application/octet-stream' } });
      text = await reply.text();
    } catch (err) {
      fail('The server did not answer: ' + err.message);
      return;
    }
    let body = null;
    try { body = JSON.parse(text); } catch (err) { /* not JSON: shown as text */ }
    if (!reply.ok) {
      fail('The server refused ' + f.name + ' (' + reply.status + '): ' + (body && body.error ? body.error : text || reply.statusText));
      return;
    }
    if (!body || typeof body.probabilities !== 'object') {
      fail('Unexpected answer: ' + text);
      return;
    }
    show(body);
  }

  file.addEventListener('change', () => classify(file.files[0]));
  for (const kind of ['dragenter', 'dragover']) {
    drop.addEventListener(kind, (e) => { e.preventDefault(); drop.classList.add('over'); });
  }
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    classify(e.dataTransfer.files[0]);
  });
  document.getElementById('form').addEventListener('submit', (e) => e.preventDefault());
  app.dataset.ready = 'true';
})();
