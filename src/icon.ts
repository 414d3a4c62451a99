import { LabIcon } from '@jupyterlab/ui-components';

/**
 * The Performance Advisor icon (a bar chart with a trend line), kept in sync with
 * `style/icons/advisor.svg`. Inline so that no SVG loader is needed.
 */
const advisorSvgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M3 20h18v1.5H3z"/>
    <path d="M4.5 12h3v7h-3zM10.5 8h3v11h-3zM16.5 4h3v15h-3z"/>
  </g>
  <g class="jp-icon-warn0" fill="#f57c00">
    <path d="M3.6 10.2 8.3 5.6l3 2.6 5.1-5.3 1.1 1-6.1 6.4-3-2.6-3.7 3.6z"/>
  </g>
</svg>`;

export const advisorIcon = new LabIcon({
  name: 'jupyterlab-performance-advisor:icon',
  svgstr: advisorSvgstr
});
