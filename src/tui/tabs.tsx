/** The view switcher with each view's row count, and the filter when there is one. */
import { Box, Text } from 'ink';
import { VIEWS, type ViewName } from './rows.js';

const TITLES: Record<ViewName, [long: string, short: string]> = {
  sessions: ['sessions', 'sess'],
  transfers: ['transfers', 'xfer'],
  errors: ['errors', 'err'],
};

/** below this width the tab titles are abbreviated */
const NARROW = 60;

export interface TabsProps {
  view: ViewName;
  counts: Record<ViewName, number>;
  filter: string;
  editing: boolean;
  width: number;
}

function parts({ view, counts, filter, editing, width }: TabsProps) {
  const tabs = VIEWS.map((v, i) => {
    const label = `${i + 1} ${TITLES[v][width < NARROW ? 1 : 0]} ${counts[v]}`;
    return { view: v, text: v === view ? `[${label}]` : ` ${label} ` };
  });
  const filterText = editing || filter !== '' ? `filter: ${filter}${editing ? '_' : ''}` : '';
  return { tabs, filterText };
}

/** lines the tabs take at this width */
export function tabsHeight(props: TabsProps): number {
  const { tabs, filterText } = parts(props);
  const tabsWidth = tabs.reduce((sum, t) => sum + t.text.length + 2, 0);
  return filterText !== '' && tabsWidth + filterText.length > props.width ? 2 : 1;
}

export function Tabs(props: TabsProps) {
  const { tabs, filterText } = parts(props);
  return (
    <Box columnGap={2} flexWrap="wrap">
      {tabs.map((t) =>
        t.view === props.view ? (
          <Text key={t.view} bold inverse>
            {t.text}
          </Text>
        ) : (
          <Text key={t.view}>{t.text}</Text>
        ),
      )}
      {filterText !== '' ? (
        <Text color="cyan" wrap="truncate-end">
          {filterText}
        </Text>
      ) : null}
    </Box>
  );
}
