// expect: 9:23 option `skipStagesAfterUnstable` applies to the whole pipeline
// expect: 14:9 unknown trigger `upstreamish`: Sluice supports cron and githubPush
// expect: 6:57 logRotator needs numToKeepStr, daysToKeepStr, artifactNumToKeepStr or artifactDaysToKeepStr
pipeline {
    agent any
    options { skipStagesAfterUnstable(); buildDiscarder(logRotator(daysToKeepStr: '')) }
    stages {
        stage('A') {
            options { skipStagesAfterUnstable() }
            steps { echo 'a' }
        }
    }
    triggers {
        upstreamish('x')
        githubPush()
    }
}
