// Icons of the tab area (stroke style, currentColor, inline: the console loads nothing from elsewhere).
import type { ReactNode } from 'react';
import { Icon as BaseIcon } from '../components/icons';

function Icon({ children, size = 14 }: { children: ReactNode; size?: number }) {
  return <BaseIcon size={size}>{children}</BaseIcon>;
}

export const TerminalIcon = () => (
  <Icon>
    <path d="m5 8 4 4-4 4" />
    <path d="M12 17h7" />
  </Icon>
);

export const SqlIcon = () => (
  <Icon>
    <ellipse cx="12" cy="5.5" rx="7" ry="2.5" />
    <path d="M5 5.5v13c0 1.4 3.1 2.5 7 2.5s7-1.1 7-2.5v-13" />
    <path d="M5 12c0 1.4 3.1 2.5 7 2.5s7-1.1 7-2.5" />
  </Icon>
);

export const ReplayIcon = () => (
  <Icon>
    <circle cx="12" cy="12" r="9" />
    <path d="m10 8.5 5 3.5-5 3.5z" />
  </Icon>
);

export const RecordingsIcon = () => (
  <Icon>
    <rect x="3" y="5" width="18" height="14" rx="2" />
    <circle cx="9" cy="12" r="2.5" />
    <path d="M14 10h4M14 14h4" />
  </Icon>
);

export const HomeIcon = () => (
  <Icon>
    <rect x="3" y="3" width="7" height="7" rx="1.5" />
    <rect x="14" y="3" width="7" height="7" rx="1.5" />
    <rect x="3" y="14" width="7" height="7" rx="1.5" />
    <rect x="14" y="14" width="7" height="7" rx="1.5" />
  </Icon>
);

export const PlusIcon = () => (
  <Icon>
    <path d="M12 5v14M5 12h14" />
  </Icon>
);

export const CloseIcon = () => (
  <Icon size={12}>
    <path d="M6 6l12 12M18 6 6 18" />
  </Icon>
);
