// Sharing files: the picker, drag-and-drop onto the page, and pasting into the composer. Files
// go up one at a time over XHR (fetch reports no upload progress), with a progress bar; the
// server then announces each one as a chat message like any other.
import { showNotice, ui } from './dom.js';
import { formatBytes, INLINE_IMAGE_TYPES, newClientId } from './util.js';
import { currentName, openNameDialog } from './identity.js';

const queue = []; // files waiting to be uploaded, one at a time
let uploading = false;
let dragDepth = 0;

function setProgress(fraction) {
  const percent = Math.round(fraction * 100);
  ui.progressBar.value = percent;
  ui.progressPercent.textContent = `${percent}%`;
}

function uploadFiles(fileList) {
  const files = [...fileList];
  if (!files.length) return;
  if (!currentName()) {
    openNameDialog();
    return;
  }
  queue.push(...files);
  if (!uploading) uploadNext();
}

function uploadNext() {
  const file = queue.shift();
  if (!file) {
    uploading = false;
    ui.progress.dataset.state = 'done';
    // Leave the full bar up for a moment so people see it finished.
    setTimeout(() => {
      if (!uploading) {
        ui.progress.hidden = true;
        ui.progress.dataset.state = 'idle';
      }
    }, 900);
    return;
  }
  uploading = true;
  ui.progress.hidden = false;
  ui.progress.dataset.state = 'uploading';
  ui.progressLabel.textContent = `Uploading ${file.name} (${formatBytes(file.size)})`;
  setProgress(0);

  const form = new FormData();
  form.append('username', currentName());
  form.append('clientId', newClientId());
  // Non-image files carry their name as the message: the stored file gets a generated name.
  if (!INLINE_IMAGE_TYPES.has(file.type) && file.name) form.append('message', file.name);
  form.append('upload', file, file.name || 'upload');

  const request = new XMLHttpRequest();
  request.open('POST', '/upload');
  request.upload.addEventListener('progress', (event) => {
    if (event.lengthComputable) setProgress(event.loaded / event.total);
  });
  request.addEventListener('load', () => {
    if (request.status === 201 || request.status === 200) {
      setProgress(1);
    } else if (request.status === 413) {
      showNotice(`${file.name} is too large to share (${formatBytes(file.size)}).`, 8000);
    } else {
      const detail = (request.responseText || '').slice(0, 200).trim();
      showNotice(`Upload of ${file.name} failed: ${detail || `HTTP ${request.status}`}`, 8000);
    }
    uploadNext();
  });
  request.addEventListener('error', () => {
    showNotice(`Upload of ${file.name} failed: the server could not be reached.`, 8000);
    uploadNext();
  });
  request.send(form);
}

function hasFiles(event) {
  return Boolean(event.dataTransfer) && [...event.dataTransfer.types].includes('Files');
}

function wireDragAndDrop() {
  // dragenter/dragleave fire for every child crossed, so count depth to know when we left.
  document.addEventListener('dragenter', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth += 1;
    ui.dropZone.hidden = false;
  });
  document.addEventListener('dragover', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault(); // allow the drop
    event.dataTransfer.dropEffect = 'copy';
  });
  document.addEventListener('dragleave', (event) => {
    if (!hasFiles(event)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) ui.dropZone.hidden = true;
  });
  document.addEventListener('drop', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault(); // or the browser navigates to the file
    dragDepth = 0;
    ui.dropZone.hidden = true;
    uploadFiles(event.dataTransfer.files);
  });
}

export function wireUploads() {
  ui.input.addEventListener('paste', (event) => {
    const files = event.clipboardData ? event.clipboardData.files : [];
    if (files.length) {
      event.preventDefault();
      uploadFiles(files);
    }
  });
  ui.fileInput.addEventListener('change', () => {
    uploadFiles(ui.fileInput.files);
    ui.fileInput.value = ''; // choosing the same file again still fires "change"
  });
  wireDragAndDrop();
}
