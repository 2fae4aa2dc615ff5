// The typed bridge the renderer may use. Nothing else from Electron or Node crosses.
import { contextBridge } from 'electron';

contextBridge.exposeInMainWorld('sallyport', {
  platform: 'desktop' as const,
});
