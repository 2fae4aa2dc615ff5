import { startSshd } from './src/devstack/sshd';
const s = await startSshd();
console.log(JSON.stringify({ dir: s.dir, pid: process.pid }));
setInterval(() => {}, 1000);
