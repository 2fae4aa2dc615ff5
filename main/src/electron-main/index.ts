// The Electron main process. Thin on purpose: decisions live in ../node (tested under Node).
import path from 'node:path';
import { app, BrowserWindow, shell } from 'electron';
import { externalOpenable, isSameOrigin, secureWebPreferences } from '../node/navigation-policy';

const gateway = process.env.SALLYPORT_GATEWAY ?? 'http://127.0.0.1:8080';

function createWindow() {
  const win = new BrowserWindow({
    width: 1280,
    height: 820,
    title: 'Sallyport',
    webPreferences: { ...secureWebPreferences, preload: path.join(__dirname, '../preload/index.js') },
  });
  win.webContents.on('will-navigate', (event, url) => {
    if (!isSameOrigin(url, gateway)) event.preventDefault();
  });
  win.webContents.setWindowOpenHandler(({ url }) => {
    if (externalOpenable(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
  void win.loadURL(gateway);
}

app.whenReady().then(createWindow);
app.on('window-all-closed', () => app.quit());
