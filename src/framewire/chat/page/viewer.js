// The full-size image viewer (a <dialog>).
import { ui } from './dom.js';

export function openViewer(url, alt) {
  ui.viewerImage.src = url;
  ui.viewerImage.alt = alt;
  ui.viewerOpen.href = url;
  ui.viewer.showModal();
}

export function wireViewer() {
  ui.viewerClose.addEventListener('click', () => ui.viewer.close());
  ui.viewer.addEventListener('click', (event) => {
    if (event.target === ui.viewer) ui.viewer.close(); // a click on the backdrop
  });
  ui.viewer.addEventListener('close', () => ui.viewerImage.removeAttribute('src'));
}
